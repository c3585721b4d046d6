"""The demo's caption grammar: content words (colour, shape, action) stay stable, wording varies modestly.
Two events are ordered by content, never by time, which soft attention and mean pooling cannot see:
two objects by palette order (world.COLOUR_ORDER), two actions of one object by world.ACTION_ORDER."""
from __future__ import annotations

import numpy as np

from splits.demo.world import ACTION_ORDER, COLOUR_ORDER

CAPTIONS_PER_CLIP = 8
MAX_DRAWS = 500            # attempts to find CAPTIONS_PER_CLIP distinct paraphrases

# Each list starts with the usual wording, drawn MAIN_WEIGHT (shapes: SHAPE_MAIN_WEIGHT) of the time.
MAIN_WEIGHT, SHAPE_MAIN_WEIGHT = 0.5, 0.8
SHAPE_WORDS = {"square": ["square", "box"], "circle": ["circle", "ball"], "triangle": ["triangle"]}
DETERMINERS = ["a", "the"]
# Present tense ("a red square moves left") and participle ("... is moving left") wordings.
PRESENT = {
    "move_left": ["moves left", "moves to the left", "slides left", "goes to the left"],
    "move_right": ["moves right", "moves to the right", "slides right", "goes to the right"],
    "move_up": ["moves up", "moves upwards", "slides up", "goes up"],
    "move_down": ["moves down", "moves downwards", "slides down", "goes down"],
    "grow": ["grows", "gets bigger", "grows larger", "becomes bigger"],
    "shrink": ["shrinks", "gets smaller", "shrinks down", "becomes smaller"],
    "appear": ["appears", "fades in", "shows up", "slowly appears"],
    "disappear": ["disappears", "fades away", "vanishes", "slowly disappears"],
}
ING = {"moves": "moving", "slides": "sliding", "goes": "going", "grows": "growing", "gets": "getting",
       "becomes": "becoming", "shrinks": "shrinking", "appears": "appearing", "fades": "fading",
       "shows": "showing", "disappears": "disappearing", "vanishes": "vanishing"}
PARTICIPLE = {action: [" ".join(ING.get(word, word) for word in wording.split()) for wording in wordings]
              for action, wordings in PRESENT.items()}
# Sentence frames: "<np> <present>", "<np> is <participle>", "there is <a-np> <participle>".
FRAMES = ("present", "progressive", "there_is")


def _pick(rng, options: list, main_weight: float = MAIN_WEIGHT) -> str:
    if len(options) == 1 or rng.random() < main_weight:
        return options[0]
    return options[1 + int(rng.integers(len(options) - 1))]


def _object_clause(rng, colour: str, shape: str, actions: list, frame: str) -> str:
    determiner = "a" if frame == "there_is" else DETERMINERS[int(rng.integers(len(DETERMINERS)))]
    noun = f"{determiner} {colour} {_pick(rng, SHAPE_WORDS[shape], SHAPE_MAIN_WEIGHT)}"
    verbs = " and ".join(_pick(rng, (PRESENT if frame == "present" else PARTICIPLE)[a]) for a in actions)
    return f"{noun} is {verbs}" if frame == "progressive" else f"{noun} {verbs}"


def describe(spec: dict, rng: np.random.Generator, n_captions: int = CAPTIONS_PER_CLIP) -> list:
    """n_captions distinct captions of a clip: the canonical one first, then paraphrases."""
    # [(colour, shape, [actions])] in caption order: objects by palette, actions by ACTION_ORDER
    content = sorted([(obj["colour"], obj["shape"],
                       sorted((seg["action"] for seg in obj["segments"]), key=ACTION_ORDER.index))
                      for obj in spec["objects"]], key=lambda item: COLOUR_ORDER.index(item[0]))
    # the plainest wording first: 'a red square moves left and a blue circle grows'
    captions = [" and ".join(f"a {colour} {SHAPE_WORDS[shape][0]} " + " and ".join(PRESENT[a][0] for a in actions)
                             for colour, shape, actions in content)]
    for _ in range(MAX_DRAWS):
        if len(captions) == n_captions:
            return captions
        frame = FRAMES[int(rng.integers(len(FRAMES)))]
        sentence = " and ".join(_object_clause(rng, *item, frame) for item in content)
        caption = f"there is {sentence}" if frame == "there_is" else sentence
        if caption not in captions:
            captions.append(caption)
    raise RuntimeError(f"clip {spec['id']}: only {len(captions)} distinct captions for {content}")
