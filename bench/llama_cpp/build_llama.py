"""The one-time llama.cpp build for the comparison: the source bundled in the npm package
node-llama-cpp@3.22.1, built CPU-only with -march=native into a cache directory.

node-llama-cpp ships llama.cpp as a git bundle (package/llama/gitRelease.bundle, one squashed
commit; the release it pins is named in package/llama/llama.cpp.info.json) plus its own patches
(package/llama/patches/*.diff), which it applies before building; so do we. Everything lands in
CACHE: the tarball, package/, src/ (the clone), build/ (CMake, Ninja), build.log, setup.json.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

PACKAGE = "node-llama-cpp@3.22.1"
TARGETS = ["llama-bench", "llama-quantize"]
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DGGML_CUDA=OFF", "-DGGML_VULKAN=OFF",
               "-DGGML_METAL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
               "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF"]


def default_cache():
    return pathlib.Path(os.environ.get("MNEMO_LLAMA_CACHE", pathlib.Path.home() / ".cache/mnemo/llama.cpp"))


def binary(cache, name):
    return pathlib.Path(cache) / "build" / "bin" / name


def is_built(cache):
    return all(binary(cache, t).exists() for t in TARGETS)


def log(msg):
    print(f"[setup] {msg}", flush=True)


def fetch_package(cache):
    """npm pack the package into CACHE once; returns the tarball."""
    name, version = PACKAGE.rsplit("@", 1)
    tgz = cache / f"{name}-{version}.tgz"
    if not tgz.exists():
        log(f"npm pack {PACKAGE} into {cache}")
        subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(cache)], check=True,
                       stdout=subprocess.DEVNULL)
    return tgz


def unpack_source(cache, tgz):
    """Extracts package/llama and clones the bundled llama.cpp into CACHE/src, patched."""
    pkg = cache / "package"
    if not (pkg / "llama").exists():
        with tarfile.open(tgz) as t:
            members = [m for m in t.getmembers() if m.name.startswith(("package/llama/", "package/package.json"))]
            t.extractall(cache, members=members)
    info = json.loads((pkg / "llama" / "llama.cpp.info.json").read_text())
    bundle = pkg / "llama" / "gitRelease.bundle"
    src = cache / "src"
    if not bundle.exists():
        # Older packages download the pinned release at postinstall instead of bundling it.
        raise SystemExit(f"{tgz.name} bundles no llama.cpp source; it pins {info.get('llamaCppGithubRepo')} "
                         f"release {info.get('tag')} (package/llama/llama.cpp.info.json), fetched by its "
                         "postinstall: clone that tag into CACHE/src and rerun --setup")
    if not (src / ".git").exists():
        log(f"cloning the bundled llama.cpp ({info}) into {src}")
        subprocess.run(["git", "clone", "-q", str(bundle), str(src)], check=True)
    for diff in sorted((pkg / "llama" / "patches").glob("*.diff")):
        reverse = subprocess.run(["git", "-C", str(src), "apply", "--check", "--reverse", str(diff)],
                                 capture_output=True)
        if reverse.returncode != 0:  # not applied yet
            subprocess.run(["git", "-C", str(src), "apply", str(diff)], check=True)
            log(f"applied node-llama-cpp's patch {diff.name}")
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return src, info, commit


def build(cache, src, jobs):
    """CMake + Ninja under nice -n 19 (other work on the machine keeps its cores), log in build.log."""
    b = cache / "build"
    logf = cache / "build.log"
    nice = ["nice", "-n", "19"]
    log(f"building {TARGETS} in {b} (about 25 minutes on 2 cores; log: {logf})")
    with open(logf, "a") as out:
        if not (b / "build.ninja").exists():
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.run(nice + ["cmake", "-S", str(src), "-B", str(b)] + gen + CMAKE_FLAGS, check=True,
                           stdout=out, stderr=subprocess.STDOUT)
        subprocess.run(nice + ["cmake", "--build", str(b), "-j", str(jobs), "--target"] + TARGETS, check=True,
                       stdout=out, stderr=subprocess.STDOUT)


def setup(cache=None, jobs=2):
    """Idempotent: skips every step already done. Returns CACHE/setup.json's content."""
    cache = pathlib.Path(cache or default_cache())
    cache.mkdir(parents=True, exist_ok=True)
    tgz = fetch_package(cache)
    src, info, commit = unpack_source(cache, tgz)
    if is_built(cache):
        log(f"already built: {binary(cache, 'llama-bench')}")
    else:
        build(cache, src, jobs)
    meta = {"package": PACKAGE, "llama_cpp": info, "commit": commit, "cmake_flags": CMAKE_FLAGS,
            "binaries": {t: str(binary(cache, t)) for t in TARGETS}, "src": str(src)}
    (cache / "setup.json").write_text(json.dumps(meta, indent=1))
    return meta


if __name__ == "__main__":
    print(json.dumps(setup(sys.argv[1] if len(sys.argv) > 1 else None), indent=1))
