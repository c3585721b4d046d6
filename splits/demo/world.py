"""What a demo clip can contain. Everything the sampler, renderer and captions agree on."""
from __future__ import annotations

FRAME_SIZE = 32  # pixels, square frames: small, so the whole corpus renders in seconds

# Palette order orders two objects in a caption (never time). Channel values sit at the centres of the
# colour histogram's 4 bins per channel (32, 96, 160, 224), so pixel noise rarely moves a pixel to another bin.
COLOURS = {"red": (224, 32, 32), "yellow": (224, 224, 32), "green": (32, 160, 32), "blue": (32, 96, 224),
           "purple": (160, 32, 224), "white": (224, 224, 224)}
COLOUR_ORDER = list(COLOURS)
SHAPES = ("square", "circle", "triangle")

# Actions grouped by what they change. A clip where one object does two actions takes them
# from two different groups; appear can only come first in time and disappear only last.
ACTION_GROUPS = {"move": ("move_left", "move_right", "move_up", "move_down"), "size": ("grow", "shrink"),
                 "visibility": ("appear", "disappear")}
# The content rule that orders two actions of one object in a caption (never time).
ACTION_ORDER = ("appear", "move_left", "move_right", "move_up", "move_down", "grow", "shrink", "disappear")
MOVE_DIRECTIONS = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}

BACKGROUND_GREY_RANGE = (70, 110)   # plain background level, drawn per clip
BACKGROUND_TINT = 8                 # per-channel jitter of the background around the grey
PIXEL_NOISE_STD = 6.0               # Gaussian pixel noise, far below the foreground threshold
