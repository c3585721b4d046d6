"""The SA-LSTM model, its attentions and searches. Every file in models/plugins/ is imported with
the package, so that an attention or search defined there is registered by name with no other edit."""
import importlib
from pathlib import Path

for _plugin in sorted((Path(__file__).parent / "plugins").glob("*.py")):
    importlib.import_module(f"models.plugins.{_plugin.stem}")
