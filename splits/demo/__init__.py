"""The built-in demo corpus: synthetic clips of coloured shapes, rendered with numpy.

world.py     what can be in a clip: colours, shapes, actions, frame size
clips.py     a clip specification (JSON) and how objects move over time
render.py    render_frames(spec): the exact pixels of a clip
features.py  the appearance and motion feature streams computed from the pixels
captions.py  the caption grammar (event order in a caption follows content, never time)
"""
from splits.demo.render import render_frames  # noqa: F401  (the entry point for attention pictures)
