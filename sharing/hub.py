"""A shared model folder on the Hugging Face Hub: downloaded by id, uploaded with one command."""
from __future__ import annotations

from sharing.folder import FILES, read_folder
from utils import DataError


def download(repo_id: str) -> str:
    """The local folder of repo_id's files (HF_HUB_OFFLINE=1 reads the Hub's cache alone)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(f"--checkpoint {repo_id} names no local file or folder, and huggingface_hub, "
                        "which downloads from the Hub, is not installed: pip install huggingface_hub") from None
    try:
        return snapshot_download(repo_id, allow_patterns=list(FILES))
    except Exception as error:  # network, missing repository, private, offline without cache: one answer
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"checkpoint {repo_id} is no local file or folder, and no model of that id "
                        f"could be had from the Hugging Face Hub ({type(error).__name__}: {reason}); "
                        "give a best.pt, a folder from `python -m sharing export`, or a Hub id") from None


def upload(folder: str, repo_id: str, private: bool = False) -> str:
    """Check folder, then create repo_id (if new) and upload the folder; the repository's URL."""
    read_folder(folder)
    from huggingface_hub import HfApi
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=folder, repo_id=repo_id, allow_patterns=list(FILES),
                          commit_message="SA-LSTM model folder from python -m sharing export")
    except Exception as error:  # authentication, network, permissions: the Hub's own words
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"uploading {folder} to {repo_id} failed ({type(error).__name__}: {reason}); "
                        "log in with `hf auth login` (a token with write access) and try again") from None
    return str(url)
