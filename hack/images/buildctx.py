"""Helpers for hack/images/build.sh: the host's pip setup for builds, and a content hash.

Why: `pip install` inside a buildah RUN step reaches the package index (and the local CPU
torch wheel) only with the host's pip configuration, and rebuilding a 1.5 GB image when
nothing it copies has changed wastes minutes.
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

PIP_FILES = [
    Path("/etc/xdg/pip/pip.conf"),
    Path("/etc/pip.conf"),
    Path.home() / ".pip" / "pip.conf",
    Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "pip" / "pip.conf",
]
# PIP_* variables that are about this host's process or install location, not about
# where packages come from; everything else pip reads from PIP_<OPTION> reaches the build.
ENV_SKIP = {
    "config-file",
    "target",
    "prefix",
    "root",
    "user",
    "src",
    "log",
    "log-file",
    "cache-dir",
    "no-cache-dir",
    "require-virtualenv",
    "python",
    "break-system-packages",
}
# Options whose values name one nested file per line in requirement/constraint files.
_NESTED = re.compile(
    r"^\s*(-r|-c|-f|-i|--requirement|--constraint|--find-links|--index-url|--extra-index-url)"
    r"(?:\s+|=)(\S+)"
)


def merged_pip_config() -> configparser.ConfigParser:
    """Merge pip's config files and PIP_* variables, in pip's own precedence order."""
    cfg = configparser.ConfigParser(interpolation=None)
    files = list(PIP_FILES)
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    for f in files:
        if f.is_file():
            cfg.read(f)
    if not cfg.has_section("global"):
        cfg.add_section("global")
    for env, value in sorted(os.environ.items()):
        key = env.removeprefix("PIP_").lower().replace("_", "-")
        if env.startswith("PIP_") and value and key not in ENV_SKIP:
            cfg.set("global", key, value)
    # A mounted CA bundle is where the host has it; default to the system bundle.
    if not cfg.get("global", "cert", fallback=""):
        for cand in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
            if cand and Path(cand).is_file():
                cfg.set("global", "cert", cand)
                break
    return cfg


def _local_path(item: str, base: Path | None = None) -> Path | None:
    """The host path a pip value names (plain path or file:// URL), if it exists."""
    p = urlparse(item).path if item.startswith("file:") else item
    path = Path(p)
    if not path.is_absolute():
        if base is None or "://" in item:
            return None
        path = base / path
    return path if path.exists() else None


def _nested_paths(req_file: Path, seen: set[Path]) -> list[Path]:
    """Files and folders that a requirement/constraint file names (-r, -c, -f, -i lines)."""
    if req_file in seen or not req_file.is_file():
        return []
    seen.add(req_file)
    out: list[Path] = []
    for line in req_file.read_text(errors="replace").splitlines():
        m = _NESTED.match(line)
        if not m:
            continue
        nested = _local_path(m.group(2), req_file.parent)
        if nested is not None:
            out.append(nested)
            if m.group(1) in ("-r", "-c", "--requirement", "--constraint"):
                out.extend(_nested_paths(nested, seen))
    return out


def local_paths(cfg: configparser.ConfigParser) -> list[str]:
    """Host paths the build must see read-only, at the same place.

    Every value of every option is checked, so whatever pip accepts as a path (constraint,
    requirement, find-links, file:// indexes, cert, client-cert, ...) reaches the build;
    requirement and constraint files are followed for the files they name in turn.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for section in cfg.sections():
        for _key, value in cfg.items(section):
            for item in value.split():
                path = _local_path(item)
                if path is None:
                    continue
                if path.name == "simple" and path.is_dir():
                    # simple/<project>/index.html links up to ../../files: mount the parent
                    path = path.parent
                found.append(path)
                if path.is_file():
                    found.extend(_nested_paths(path, seen))
    paths = {str(p.resolve()) for p in found}
    # drop paths nested in another mounted path
    return sorted(p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths))


def cmd_pipconf(args: argparse.Namespace) -> None:
    cfg = merged_pip_config()
    with open(args.out, "w") as fh:
        cfg.write(fh)
    for p in local_paths(cfg):
        print(p)


def copy_sources(dockerfile: Path) -> list[str]:
    """Source paths of COPY/ADD lines (not --from= stage copies), relative to the context."""
    text = dockerfile.read_text().replace("\\\n", " ")
    out: list[str] = []
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or parts[0].upper() not in ("COPY", "ADD"):
            continue
        rest = parts[1].strip()
        if rest.startswith("["):
            toks = json.loads(rest)
        else:
            toks = shlex.split(rest)
        if any(t.startswith("--from") for t in toks):
            continue
        toks = [t for t in toks if not t.startswith("--")]
        out.extend(toks[:-1])
    return out


def ignore_patterns(context: Path) -> list[str]:
    f = context / ".dockerignore"
    pats = ["**/__pycache__", "**/*.pyc", ".git"]
    if f.is_file():
        pats += [
            ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
    return pats


def ignored(rel: str, pats: list[str]) -> bool:
    """A simplified .dockerignore match: glob, directory prefix, or **/name anywhere."""
    parts = rel.split("/")
    for pat in pats:
        pat = pat.rstrip("/").removeprefix("./")
        bare = pat.removeprefix("**/")
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, bare) or rel.startswith(pat + "/"):
            return True
        if pat.startswith("**/") and any(fnmatch.fnmatch(part, bare) for part in parts):
            return True
    return False


def cmd_hash(args: argparse.Namespace) -> None:
    context = Path(args.context).resolve()
    dockerfile = Path(args.dockerfile).resolve()
    pats = ignore_patterns(context)
    h = hashlib.sha256()
    for extra in args.extra:
        h.update(b"extra\0" + extra.encode() + b"\0")
    roots = {dockerfile.parent}
    for src in copy_sources(dockerfile):
        roots.update(context.glob(src) if any(c in src for c in "*?[") else [context / src])
    files: set[Path] = {dockerfile}
    for r in roots:
        if r.is_file():
            files.add(r)
        elif r.is_dir():
            files.update(p for p in r.rglob("*") if p.is_file())
    for f in sorted(files):
        rel = str(f.relative_to(context)) if f.is_relative_to(context) else str(f)
        if f != dockerfile and ignored(rel, pats):
            continue
        h.update(rel.encode() + b"\0" + oct(f.stat().st_mode & 0o777).encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    print(h.hexdigest())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(required=True)
    p = sub.add_parser("pipconf", help="write the merged pip.conf; print paths to mount")
    p.add_argument("out")
    p.set_defaults(func=cmd_pipconf)
    p = sub.add_parser("hash", help="content hash of what a Dockerfile build copies")
    p.add_argument("context")
    p.add_argument("dockerfile")
    p.add_argument("extra", nargs="*")
    p.set_defaults(func=cmd_hash)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
