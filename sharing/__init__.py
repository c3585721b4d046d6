"""A trained model as a folder of JSON and safetensors files, to share and to load without
unpickling anything: python -m sharing export | upload (docs/sharing.md)."""
from sharing.hub import is_shared, load_shared, output_folder  # noqa: F401
