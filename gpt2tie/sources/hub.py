"""A repo on the Hugging Face Hub: its listing at one commit, its files read by range requests
(config.json and code through huggingface_hub's cache; never the weights).

Headers are kept in gpt2tie's cache (keyed by commit), so a second run works offline. Endpoint,
token and offline mode are read at call time, so `HF_ENDPOINT` and `HF_HUB_OFFLINE` apply even
after huggingface_hub was imported.
"""

from __future__ import annotations

from gpt2tie.requests.request import SourceOptions
from gpt2tie.results import Source
from gpt2tie.sources.header_cache import HeaderCache
from gpt2tie.sources.hub_http import download, model_info
from gpt2tie.sources.located import Place
from gpt2tie.sources.remote_files import RemoteFiles, names_under


def hub_place(spec: str, options: SourceOptions) -> Place:
    """The repo at `--revision` (and `--subfolder`), listed by one request."""
    revision = options.revision or "main"
    commit, siblings, shown = model_info(spec, revision, options)
    names = names_under(siblings, options.subfolder)
    remote = RemoteFiles(spec, commit, options, names, HeaderCache(spec, commit, options.subfolder))
    return Place(
        source=Source(
            spec=spec,
            kind="hub",
            path=None,
            repo_id=spec,
            revision=commit,
            # The Hub's count is the whole repo's: a sub-folder's report does not carry it.
            hub_parameters=None if options.subfolder else shown,
        ),
        files=remote,
        names=frozenset(names),
        # By branch or tag name, so that the HF cache records the ref for offline runs.
        fetch=lambda name: download(spec, name, revision, options),
        where=f"the repo's folder {options.subfolder}" if options.subfolder else "the repo",
        gguf_file=options.gguf_file,
        size_of=remote.known_size,
        all_remote=True,
        done=remote.persist,
    )
