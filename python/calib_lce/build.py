"""Builds the engine's loss (the repository's native/ sources, not a copy) into one shared library.

    python -m calib_lce.build [--arch 90a] [--cpu] [--out DIR] [--jobs N] [--force] [--dry-run]

Two variants:
  cuda  libcalib_lce_cuda.so  native/src/{common,loss}/*.cc with the host compiler, native/src/{common,cuda,loss}/*.cu
                              with nvcc (the addon's flags: -O3 --use_fast_math -lineinfo, machine code for the
                              requested architectures, default sm_90a), linked with the static CUDA runtime so the
                              library needs no CUDA toolkit at run time (only the driver; cuBLAS is opened at run time).
  cpu   libcalib_lce_cpu.so   the same .cc files without CUDA: the CPU engine and the pure planner
                              (calib_lce_cuda_describe), built with g++ alone (tests, CPU-only machines).
Only the C API (calib_*) is exported; the static CUDA runtime stays private to the library, so it cannot clash
with the CUDA runtime PyTorch loads.

Where: the folder given by --out (or $CALIB_LCE_LIB_DIR), else `_build/` next to this file (or
~/.cache/calib_lce when the package folder is read-only). A library is fresh when its stamp (a JSON file beside it)
records the same digest of the sources and headers, the same flags and the architectures asked for; file times are
not trusted (copies and checkouts change them). Objects are cached by the digest of their command and inputs, so
an edit recompiles only what it touches. Concurrent builds (several ranks starting at once) wait on a file lock.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

PACKAGE_DIR = Path(__file__).resolve().parent
VARIANTS = ("cuda", "cpu")
LIBRARY_NAMES = {"cuda": "libcalib_lce_cuda.so", "cpu": "libcalib_lce_cpu.so"}
DEFAULT_ARCH = "90a"
# The addon's compiler flags (native/scripts/build.mjs), so both builds run the same code.
CXX_FLAGS = ["-std=c++17", "-O3", "-fPIC"]
NVCC_FLAGS = ["-std=c++17", "-O3", "--use_fast_math", "-lineinfo", "-Xcompiler", "-fPIC"]
# Which native sources each variant compiles (relative to native/src).
HOST_GLOBS = ["common/*.cc", "loss/*.cc"]
DEVICE_GLOBS = ["common/*.cu", "cuda/*.cu", "loss/*.cu"]
# Every file whose content the library depends on (the digest of the stamp).
DIGEST_GLOBS = ["include/*.h", "src/common/*", "src/loss/*", "src/cuda/*"]


class BuildError(RuntimeError):
    """The library cannot be built: a missing tool or native source, or a compiler failure."""


def log(msg: str) -> None:
    print(f"[calib_lce build] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- locating things
def find_native(native: Optional[os.PathLike] = None) -> Path:
    """The repository's native/ folder: the argument, $CALIB_LCE_NATIVE, or ../../native from this package."""
    candidates = [native] if native else [os.environ.get("CALIB_LCE_NATIVE"), PACKAGE_DIR.parent.parent / "native"]
    for c in candidates:
        if c and (Path(c) / "include" / "calib.h").is_file() and (Path(c) / "src" / "loss").is_dir():
            return Path(c).resolve()
    tried = [str(c) for c in candidates if c]
    raise BuildError(
        "native sources not found: calib_lce builds the engine from the repository's native/ folder "
        f"(looked in {', '.join(tried)}); install the package from a checkout (pip install -e python/) "
        "or set CALIB_LCE_NATIVE to the native/ folder")


def _runs(exe: str) -> bool:
    try:
        return subprocess.run([exe, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find_nvcc(explicit: Optional[str] = None) -> str:
    """nvcc: the argument, $NVCC, $CUDA_HOME/bin/nvcc, nvcc on PATH, /usr/local/cuda/bin/nvcc."""
    cands: List[str] = []
    if explicit:
        cands.append(explicit)
    else:
        if os.environ.get("NVCC"):
            cands.append(os.environ["NVCC"])
        for var in ("CUDA_HOME", "CUDA_PATH"):
            if os.environ.get(var):
                cands.append(str(Path(os.environ[var]) / "bin" / "nvcc"))
        on_path = shutil.which("nvcc")
        if on_path:
            cands.append(on_path)
        cands.append("/usr/local/cuda/bin/nvcc")
    for c in cands:
        if _runs(c):
            return c
    raise BuildError(
        f"nvcc not found: tried {', '.join(cands)}. Install the CUDA toolkit (nvcc ≥ 12.4 for sm_90a), put nvcc on "
        "PATH or pass --nvcc PATH; or build the CPU-only library with --cpu")


def find_cxx(explicit: Optional[str] = None) -> str:
    cands = [explicit] if explicit else [os.environ.get("CXX"), "g++", "c++", "clang++"]
    for c in cands:
        if c and shutil.which(c) and _runs(c):
            return c
    raise BuildError(f"no C++ compiler found: tried {', '.join(c for c in cands if c)} (install g++ or set CXX)")


def _toolkit_root(nvcc: str) -> Optional[Path]:
    """The toolkit nvcc belongs to, as nvcc itself reports it (TOP in --dryrun; nvcc may be a wrapper script)."""
    try:
        out = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stderr + out.stdout).splitlines():
        if line.startswith("#$ TOP="):
            return Path(line[len("#$ TOP="):].strip()).resolve()
    return None


def cudart_static_dir(nvcc: str) -> Path:
    """The folder of libcudart_static.a that belongs to this nvcc."""
    exe = Path(shutil.which(nvcc) or nvcc).resolve()
    roots = [r for r in (_toolkit_root(nvcc), exe.parent.parent) if r is not None]
    arch_dir = f"{platform.machine()}-linux"
    guesses = [d for r in roots for d in (r / "lib64", r / "lib", r / "targets" / arch_dir / "lib")]
    for g in guesses:
        if (g / "libcudart_static.a").is_file():
            return g
    raise BuildError(f"libcudart_static.a not found next to {nvcc} (looked in {', '.join(map(str, guesses))})")


def tool_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    release = [ln for ln in lines if "release" in ln]  # nvcc: "Cuda compilation tools, release 13.0, V13.0.88"
    return (release or lines or ["unknown"])[0]


# ------------------------------------------------------------------------------------------- architectures
def arch_of_capability(major: int, minor: int) -> str:
    """nvcc's architecture for a compute capability: 9.0 → 90a (wgmma and TMA need the 'a' target), else 'MN'."""
    if major < 8:
        raise BuildError(f"compute capability {major}.{minor} is too old: the engine needs sm_80 or newer")
    return f"{major}{minor}a" if (major, minor) == (9, 0) else f"{major}{minor}"


def normalize_archs(arch: Optional[str]) -> List[str]:
    """'90a', 'sm_90a', '9.0', '90a,80' → ['90a'] / ['90a', '80']; checked so that nvcc gets no surprise."""
    if arch is None:
        return [DEFAULT_ARCH]
    out: List[str] = []
    for part in str(arch).split(","):
        a = part.strip().lower()
        if a.startswith("sm_") or a.startswith("compute_"):
            a = a.split("_", 1)[1]
        if "." in a:
            major, _, minor = a.partition(".")
            if not (major.isdigit() and minor.isdigit()):
                raise BuildError(f"arch {part!r} is not an architecture (examples: 90a, 80, 9.0)")
            a = arch_of_capability(int(major), int(minor))
        digits = a[:-1] if a.endswith("a") else a
        if not digits.isdigit() or len(digits) < 2 or int(digits) < 80:
            raise BuildError(f"arch {part!r} is not a supported architecture (sm_80 or newer: 80, 86, 89, 90a, …)")
        if a not in out:
            out.append(a)
    if not out:
        raise BuildError("arch is empty")
    return out


def detect_arch() -> Optional[str]:
    """The architecture of the first visible GPU, through PyTorch when it is already imported, else nvidia-smi."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return arch_of_capability(*torch.cuda.get_device_capability())
        except Exception:  # noqa: BLE001 - fall through to nvidia-smi
            pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30).stdout.split()
            if out:
                major, _, minor = out[0].partition(".")
                return arch_of_capability(int(major), int(minor or 0))
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return None


# ------------------------------------------------------------------------------------------- the plan
def library_dir(out: Optional[os.PathLike] = None) -> Path:
    """Where libraries are built and looked for (see the module docstring)."""
    if out:
        return Path(out).expanduser().resolve()
    if os.environ.get("CALIB_LCE_LIB_DIR"):
        return Path(os.environ["CALIB_LCE_LIB_DIR"]).expanduser().resolve()
    here = PACKAGE_DIR / "_build"
    if os.access(PACKAGE_DIR, os.W_OK) or (here.is_dir() and os.access(here, os.W_OK)):
        return here
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "calib_lce"


def _digest(native: Path, keep: Callable[[Path], bool]) -> str:
    h = hashlib.sha256()
    for pattern in DIGEST_GLOBS:
        for p in sorted(native.glob(pattern)):
            if p.is_file() and keep(p):
                h.update(str(p.relative_to(native)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def source_digest(native: Path) -> str:
    """Digest of every source and header the library is built from."""
    return _digest(native, lambda p: True)


def header_digest(native: Path) -> str:
    """Digest of the headers alone: with its own source, the inputs of one object."""
    return _digest(native, lambda p: p.suffix in (".h", ".cuh"))


@dataclass
class Compile:
    source: Path
    object: Path
    command: List[str]
    tool: str  # "c++" or "nvcc"


@dataclass
class Plan:
    variant: str
    native: Path
    out: Path
    library: Path
    stamp_path: Path
    compiles: List[Compile]
    link: List[str]  # with the library path last-but-one replaced at link time by a temporary path
    stamp: Dict[str, object] = field(default_factory=dict)


def _object_name(native: Path, src: Path, command: Sequence[str], inputs_digest: str) -> str:
    key = hashlib.sha256(("\0".join(command[:-4]) + "\0" + inputs_digest).encode())
    key.update(src.read_bytes())
    rel = str(src.relative_to(native / "src")).replace("/", "__")
    return f"{rel}.{key.hexdigest()[:16]}.o"


def plan(variant: str = "cuda", *, out: Optional[os.PathLike] = None, arch: Optional[str] = None,
         march: Optional[str] = None, native: Optional[os.PathLike] = None, nvcc: Optional[str] = None,
         cxx: Optional[str] = None) -> Plan:
    """Every command a build runs, without running any (raises BuildError when a tool or source is missing)."""
    if variant not in VARIANTS:
        raise BuildError(f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    root = find_native(native)
    outdir = library_dir(out)
    cxx_exe = find_cxx(cxx)
    cuda = variant == "cuda"
    nvcc_exe = find_nvcc(nvcc) if cuda else None
    cudart = cudart_static_dir(nvcc_exe) if nvcc_exe else None
    archs = normalize_archs(arch) if cuda else []
    if march is None:
        march = "native" if platform.machine() in ("x86_64", "AMD64") else ""
    digest = source_digest(root)
    headers = header_digest(root)
    incs = ["-I", str(root / "include"), "-I", str(root / "src")]
    define = f"-DCALIB_WITH_CUDA={1 if cuda else 0}"
    objdir = outdir / f"obj-{variant}"
    compiles: List[Compile] = []
    host_flags = CXX_FLAGS + ([f"-march={march}"] if march else [])
    for pattern in HOST_GLOBS:
        for src in sorted((root / "src").glob(pattern)):
            cmd = [cxx_exe, *host_flags, *incs, define, "-c", str(src), "-o", ""]
            obj = objdir / _object_name(root, src, cmd, headers)
            cmd[-1] = str(obj)
            compiles.append(Compile(src, obj, cmd, "c++"))
    if cuda:
        gencode = [x for a in archs for x in ("-gencode", f"arch=compute_{a},code=sm_{a}")]
        for pattern in DEVICE_GLOBS:
            for src in sorted((root / "src").glob(pattern)):
                cmd = [nvcc_exe, *NVCC_FLAGS, *incs, define, *gencode, "-c", str(src), "-o", ""]
                obj = objdir / _object_name(root, src, cmd, headers)
                cmd[-1] = str(obj)
                compiles.append(Compile(src, obj, cmd, "nvcc"))
    if not compiles:
        raise BuildError(f"no sources found under {root / 'src'}")
    lib = outdir / LIBRARY_NAMES[variant]
    exports = outdir / "exports.map"
    link = [cxx_exe, "-shared", "-o", str(lib), *[str(c.object) for c in compiles],
            f"-Wl,--version-script={exports}", "-Wl,--no-undefined"]
    if cuda:
        link += ["-Wl,--exclude-libs,ALL", "-L", str(cudart), "-lcudart_static", "-ldl", "-lrt"]
    link += ["-lpthread"]
    stamp = {
        "variant": variant, "digest": digest, "archs": archs, "march": march, "native": str(root),
        "cxx": tool_version(cxx_exe), "nvcc": tool_version(nvcc_exe) if nvcc_exe else None,
        "cxx_flags": host_flags, "nvcc_flags": NVCC_FLAGS if cuda else None,
    }
    return Plan(variant, root, outdir, lib, outdir / f"{lib.name}.json", compiles, link, stamp)


# ------------------------------------------------------------------------------------------- freshness
def read_stamp(variant: str, out: Optional[os.PathLike] = None) -> Optional[dict]:
    p = library_dir(out) / f"{LIBRARY_NAMES[variant]}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def staleness(variant: str, *, out: Optional[os.PathLike] = None, arch: Optional[str] = None,
              native: Optional[os.PathLike] = None) -> Optional[str]:
    """None when the library is fresh, else why it must be (re)built. `arch` (when given) must be among those
    the library was built for; without it any architecture will do."""
    lib = library_dir(out) / LIBRARY_NAMES[variant]
    if not lib.is_file():
        return f"{lib} does not exist"
    stamp = read_stamp(variant, out)
    if not stamp:
        return f"{lib} has no build stamp"
    try:
        root = find_native(native)
    except BuildError:
        # an installed library without sources: use it as it is
        return None
    if stamp.get("digest") != source_digest(root):
        return f"the native sources changed since {lib.name} was built"
    if variant == "cuda" and arch is not None:
        want = normalize_archs(arch)
        missing = [a for a in want if a not in (stamp.get("archs") or [])]
        if missing:
            return f"{lib.name} was built for sm_{', sm_'.join(stamp.get('archs') or [])}, not sm_{missing[0]}"
    return None


# ------------------------------------------------------------------------------------------- running it
def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Lock:
    """An exclusive lock on out/.build.lock (released when the process dies, so no stale locks)."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / ".build.lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build in {self.path.parent} …")
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _compile_one(c: Compile) -> Optional[str]:
    tmp = c.object.with_name(f".{c.object.name}.{os.getpid()}.tmp")
    cmd = c.command[:-1] + [str(tmp)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        return f"{c.tool} could not run: {exc}"
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = (r.stderr or r.stdout).strip().splitlines()[-30:]
        return f"{c.tool} failed on {c.source.name} (exit {r.returncode}):\n" + "\n".join(tail)
    os.replace(tmp, c.object)
    return None


def run(p: Plan, *, jobs: Optional[int] = None, force: bool = False, progress: Callable[[str], None] = log) -> Path:
    """Compiles what is missing from the object cache, links, writes the stamp. Returns the library path."""
    p.out.mkdir(parents=True, exist_ok=True)
    objdir = p.out / f"obj-{p.variant}"
    objdir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in p.compiles if force or not c.object.is_file()]
    t0 = time.time()
    if todo:
        n = jobs or max(1, min(len(todo), os.cpu_count() or 1))
        archs = p.stamp.get("archs") or []
        progress(f"compiling {len(todo)} of {len(p.compiles)} sources with {n} job(s)"
                 + (f" for sm_{', sm_'.join(archs)}" if archs else "") + " (CUDA sources take minutes)")
        errors: List[str] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            futures = {pool.submit(_compile_one, c): c for c in todo}
            for f in concurrent.futures.as_completed(futures):
                c = futures[f]
                err = f.result()
                if err:
                    errors.append(err)
                else:
                    progress(f"  {c.tool:<4} {c.source.relative_to(p.native / 'src')}  ({time.time() - t0:.0f} s)")
        if errors:
            raise BuildError("\n".join(errors))
    _atomic_write(p.out / "exports.map", "{\n  global: calib_*;\n  local: *;\n};\n")
    tmp_lib = p.library.with_name(f".{p.library.name}.{os.getpid()}.tmp")
    link = list(p.link)
    link[link.index(str(p.library))] = str(tmp_lib)
    r = subprocess.run(link, capture_output=True, text=True)
    if r.returncode != 0:
        tmp_lib.unlink(missing_ok=True)
        raise BuildError(f"linking {p.library.name} failed (exit {r.returncode}):\n{(r.stderr or r.stdout).strip()}")
    os.replace(tmp_lib, p.library)
    stamp = dict(p.stamp, built=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _atomic_write(p.stamp_path, json.dumps(stamp, indent=2) + "\n")
    # objects of earlier builds of this variant that no current command names
    keep = {c.object.name for c in p.compiles}
    for old in objdir.glob("*.o"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    progress(f"built {p.library} in {time.time() - t0:.0f} s")
    return p.library


def ensure(variant: str = "cuda", *, out: Optional[os.PathLike] = None, arch: Optional[str] = None,
           native: Optional[os.PathLike] = None, **kwargs) -> Path:
    """The library, built first when it is missing or stale (under the lock; a build another process finished
    meanwhile is taken as it is)."""
    why = staleness(variant, out=out, arch=arch, native=native)
    if why is None:
        return library_dir(out) / LIBRARY_NAMES[variant]
    with _Lock(library_dir(out)):
        why = staleness(variant, out=out, arch=arch, native=native)
        if why is None:
            return library_dir(out) / LIBRARY_NAMES[variant]
        log(f"building the {variant} library: {why}")
        if variant == "cuda" and arch is None:
            old = read_stamp(variant, out)
            arch = ",".join(old["archs"]) if old and old.get("archs") else (detect_arch() or DEFAULT_ARCH)
        return run(plan(variant, out=out, arch=arch, native=native, **kwargs))


# ------------------------------------------------------------------------------------------- command line
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calib_lce.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="build the CPU-only library (no nvcc needed)")
    ap.add_argument("--arch", help="CUDA architectures, comma-separated (90a, 80, 9.0); default: the visible GPU's, "
                    f"else {DEFAULT_ARCH}")
    ap.add_argument("--march", help="host -march (default native; x86-64-v3 for a library built for other machines)")
    ap.add_argument("--out", help="output folder (default: $CALIB_LCE_LIB_DIR, else _build/ next to the package)")
    ap.add_argument("--native", help="the repository's native/ folder (default: found from the package)")
    ap.add_argument("--nvcc", help="the nvcc to use")
    ap.add_argument("--cxx", help="the C++ compiler to use (default g++)")
    ap.add_argument("--jobs", "-j", type=int, help="parallel compiles (default: one per core)")
    ap.add_argument("--force", action="store_true", help="recompile every source")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--check", action="store_true", help="exit 0 when the library is fresh, 1 when it must be built")
    a = ap.parse_args(argv)
    variant = "cpu" if a.cpu else "cuda"
    try:
        if a.jobs is not None and a.jobs < 1:
            raise BuildError(f"--jobs must be ≥ 1 (got {a.jobs})")
        arch = None if a.cpu else (a.arch or detect_arch() or DEFAULT_ARCH)
        if a.check:
            why = staleness(variant, out=a.out, arch=arch, native=a.native)
            print("fresh" if why is None else f"stale: {why}")
            return 0 if why is None else 1
        p = plan(variant, out=a.out, arch=arch, march=a.march, native=a.native, nvcc=a.nvcc, cxx=a.cxx)
        if a.dry_run:
            for c in p.compiles:
                print(" ".join(c.command))
            print(" ".join(p.link))
            return 0
        with _Lock(p.out):
            run(p, jobs=a.jobs, force=a.force)
        return 0
    except BuildError as exc:
        print(f"[calib_lce build] error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
