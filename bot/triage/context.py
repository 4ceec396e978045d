"""What the reporter runs: OS, arch, libc, toolchains, build systems and versions, read off the text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# (key, value, RE2 pattern, weight). Scanned in the same pass as the knowledge-base signatures.
FACT_RULES: list[tuple[str, str, str, int]] = [
    # operating systems
    (
        "os",
        "linux",
        r"(?i)\b(?:ubuntu|debian|fedora|centos|rhel|rocky linux|almalinux|arch linux|manjaro|opensuse|alpine|gentoo|nixos|linux mint|pop!_os|raspbian|amazon linux)\b",  # noqa: E501 (one rule per line reads best)
        3,
    ),
    (
        "os",
        "linux",
        r"(?i)\blinux\b|x86_64-linux-gnu|aarch64-linux-gnu|/usr/bin/ld\b|\.so(?:\.\d+)*\b|linux_amd64|linux_arm64|GOOS=linux|-unknown-linux-",
        1,
    ),
    (
        "os",
        "macos",
        r"(?i)\bmac ?os\b|\bos ?x\b|\bdarwin\b|\bxcode\b|\bdyld\b|/Users/|\bld64\b|apple-darwin|\bhomebrew\b|/opt/homebrew|\.dylib\b|\bsonoma|\bventura|\bmonterey|\bsequoia|\bbig sur",  # noqa: E501 (one rule per line reads best)
        2,
    ),
    (
        "os",
        "windows",
        r"(?i)\bwindows\b|\bwin(?:32|64|10|11)\b|[A-Z]:\\|\.exe\b|\.dll\b|\bmsvc\b|link\.exe|\bmingw|\bmsys2?\b|\bLNK\d{4}\b|-pc-windows-",
        2,
    ),
    ("os", "freebsd", r"(?i)\bfreebsd\b", 3),
    ("os", "android", r"(?i)\bandroid\b|\bndk\b|linux-android", 3),
    ("os", "ios", r"(?i)\bios\b(?: simulator)?|iphoneos|iphonesimulator|-apple-ios", 2),
    # distributions
    ("distro", "ubuntu", r"(?i)\bubuntu\b", 1),
    ("distro", "debian", r"(?i)\bdebian\b", 1),
    ("distro", "fedora", r"(?i)\bfedora\b|\brhel\b|\bcentos\b|\brocky\b|\balmalinux\b", 1),
    ("distro", "alpine", r"(?i)\balpine\b", 1),
    ("distro", "arch", r"(?i)\barch ?linux\b|\bmanjaro\b|\bpacman\b", 1),
    # architectures
    ("arch", "x86_64", r"(?i)\bx86[_-]64\b|\bamd64\b|\bx64\b", 1),
    ("arch", "arm64", r"(?i)\baarch64\b|\barm64\b|apple (?:m1|m2|m3|m4|silicon)", 1),
    ("arch", "i386", r"(?i)\bi[36]86\b|\bx86\b(?:[^_-]|$)|\bwin32\b", 1),
    ("arch", "arm", r"(?i)\barmv[67]\w*\b|\barmhf\b|\barmel\b", 1),
    ("arch", "riscv64", r"(?i)\briscv64\b", 2),
    ("arch", "ppc64le", r"(?i)\bppc64le\b", 2),
    ("arch", "s390x", r"(?i)\bs390x\b", 2),
    ("arch", "wasm32", r"(?i)\bwasm32\b|\bwasm\b", 1),
    # libc
    ("libc", "musl", r"(?i)\bmusl\b|\balpine\b|-linux-musl", 2),
    ("libc", "glibc", r"(?i)\bglibc\b|GLIBC_\d|-linux-gnu\b", 1),
    # toolchains
    (
        "toolchain",
        "go",
        r"(?i)\bgo ?v?1\.\d+\b|\bgolang\b|\bgo(?:1\.\d+|\s+version\s+go)|\bgo (?:build|run|test|install|get|mod)\b|\bcgo\b|CGO_ENABLED|\bgo\.mod\b|/pkg/tool/\w+/link|\bGOOS\b|\bGOARCH\b",  # noqa: E501 (one rule per line reads best)
        1,
    ),
    ("toolchain", "rust", r"\brustc\b|\bcargo\b|RUSTFLAGS|\brustup\b|Cargo\.toml|-C link-arg", 1),
    ("toolchain", "gcc", r"\bgcc\b|\bg\+\+|collect2|GNU ld|/usr/bin/ld\b|\bgfortran\b", 1),
    ("toolchain", "clang", r"\bclang(?:\+\+)?\b|\bld\.lld\b|\bld64\.lld\b|Apple clang", 1),
    (
        "toolchain",
        "msvc",
        r"(?i)\bmsvc\b|\bcl\.exe\b|link\.exe|\bLNK\d{4}\b|\bMSB\d{4}\b|visual studio|\bvcvars",
        2,
    ),
    ("toolchain", "mingw", r"(?i)\bmingw|\bmsys2?\b|w64-mingw32|\bucrt64\b", 2),
    ("toolchain", "zig", r"\bzig (?:build|cc|c\+\+)\b|\bzig version\b|\.zig\b", 1),
    ("toolchain", "swift", r"\bswift(?:c| build|pm)\b|Package\.swift|\bSwift\b", 1),
    (
        "toolchain",
        "python",
        r"(?i)\bpython[23]?(?:\.\d+)?\b|\bpip\d?\b|\bImportError\b|ModuleNotFoundError|site-packages|\.cpython-\d+",
        1,
    ),
    (
        "toolchain",
        "node",
        r"\bnode(?:\.js)?\b|\bnpm\b|\byarn\b|\bpnpm\b|node-gyp|NODE_MODULE_VERSION|node_modules|\belectron\b",
        1,
    ),
    (
        "toolchain",
        "java",
        r"\bjava\b|\bJNI\b|UnsatisfiedLinkError|java\.lang\.|\bgradle\b|\bmaven\b|\bjar\b",
        1,
    ),
    ("toolchain", "dotnet", r"(?i)\.net\b|\bdotnet\b|DllNotFoundException|\bnuget\b|\bC#", 1),
    ("toolchain", "cuda", r"(?i)\bcuda\b|\bnvcc\b|\bcudart\b|\bcublas", 1),
    ("toolchain", "fortran", r"(?i)\bgfortran\b|\bifort\b|\bfortran\b", 1),
    # build systems
    ("build_system", "go", r"\bgo (?:build|run|test|install)\b", 1),
    ("build_system", "cargo", r"\bcargo (?:build|run|test|install|check)\b|Compiling \S+ v\d|Cargo\.toml", 1),
    ("build_system", "cmake", r"(?i)\bcmake\b|CMakeLists\.txt|CMakeFiles/", 1),
    ("build_system", "make", r"\bmake(?:\[\d+\])?: \*\*\*|\bMakefile\b|\bmake -j", 1),
    ("build_system", "meson", r"(?i)\bmeson\b", 1),
    ("build_system", "bazel", r"(?i)\bbazel\b|\bBUILD\.bazel\b", 1),
    ("build_system", "msbuild", r"(?i)\bmsbuild\b|\.vcxproj\b|\bMSB\d{4}\b", 1),
    ("build_system", "xcode", r"(?i)\bxcodebuild\b|\.xcodeproj\b|\bxcode\b", 1),
    ("build_system", "node-gyp", r"node-gyp|binding\.gyp|prebuild-install|node-pre-gyp", 1),
    (
        "build_system",
        "setuptools",
        r"(?i)setup\.py|\bpip install\b|\bsetuptools\b|\bwheel\b|pyproject\.toml",
        1,
    ),
    ("build_system", "gradle", r"(?i)\bgradle\b", 1),
    ("build_system", "maven", r"(?i)\bmaven\b|\bmvn\b", 1),
    ("build_system", "autotools", r"\./configure\b|\bautoreconf\b|\bconfig\.log\b", 1),
    ("build_system", "conan", r"(?i)\bconan\b", 1),
    ("build_system", "vcpkg", r"(?i)\bvcpkg\b", 1),
    # languages
    ("language", "c++", r"\bg\+\+|\bclang\+\+|\bc\+\+|\bstd::|\.cpp\b|\.cc\b|\.cxx\b|\bCXX\b", 1),
    ("language", "c", r"\.c\b|\bgcc\b", 1),
    ("language", "fortran", r"(?i)\bgfortran\b|\.f90\b", 2),
]

# (name, RE2 pattern with a `version` group).
VERSION_RULES: list[tuple[str, str]] = [
    ("go", r"\bgo version go(?P<version>\d+\.\d+(?:\.\d+)?)|\bgo(?P<version2>1\.\d+(?:\.\d+)?)\b"),
    ("gcc", r"\bgcc(?: version|\s+\([^)]{0,80}\)) (?P<version>\d+\.\d+(?:\.\d+)?)"),
    ("clang", r"(?:Apple )?clang version (?P<version>\d+\.\d+(?:\.\d+)?)"),
    ("rustc", r"\brustc (?P<version>\d+\.\d+\.\d+)"),
    ("xcode", r"(?i)\bxcode[ -]?(?:version )?(?P<version>\d+(?:\.\d+){0,2})\b"),
    (
        "msvc",
        r"(?i)(?:MSVC|Visual Studio)(?: Community| Professional| Enterprise)? (?P<version>20\d\d|1[4-9]\.\d+)",  # noqa: E501
    ),
    ("binutils", r"GNU (?:ld|Binutils)[^\d\n]{0,40}(?P<version>2\.\d+(?:\.\d+)?)"),
    ("glibc", r"(?i)(?:glibc|GNU libc|ldd \(.{0,40}\)) (?P<version>2\.\d+)"),
    ("python", r"(?i)\bpython (?P<version>3\.\d+(?:\.\d+)?)"),
    ("node", r"(?i)\bnode(?:\.js)?:? v?(?P<version>\d{1,2}\.\d+\.\d+)"),
]


def context_patterns() -> list[str]:
    """Every context pattern, in the order `build_context` expects hit indexes."""
    return [rule[2] for rule in FACT_RULES] + [rule[1] for rule in VERSION_RULES]


@dataclass
class Context:
    """Detected facts; sets for keys that can hold several values (a Rust crate built with MSVC)."""

    facts: dict[str, set[str]] = field(default_factory=dict)
    primary: dict[str, str] = field(default_factory=dict)  # the strongest value per key
    versions: dict[str, str] = field(default_factory=dict)

    def fits(self, when: Mapping[str, tuple[str, ...]]) -> bool:
        """Whether a workaround restricted by `when` applies here (unknown keys never exclude)."""
        for key, values in when.items():
            if key in ("os", "libc"):
                known = {self.primary[key]} if key in self.primary else set()
            else:
                known = self.facts.get(key, set())
            if known and not known.intersection(values):
                return False
        return True

    def summary(self) -> dict[str, str]:
        """Flat strings for JSON output and logs."""
        result = dict(self.primary)
        for key, values in self.facts.items():
            if key not in ("os", "libc", "distro"):
                result[key] = ",".join(sorted(values))
        for key, version in self.versions.items():
            result[f"{key}_version"] = version
        return result


def build_context(fact_hits: Iterable[int], version_hits: Iterable[tuple[int, dict[str, str]]]) -> Context:
    """The context from the indexes of fact rules that hit (with repeats) and version captures."""
    scores: dict[str, Counter[str]] = {}
    for index in fact_hits:
        key, value, _, weight = FACT_RULES[index]
        scores.setdefault(key, Counter())[value] += weight
    context = Context()
    for key, counter in scores.items():
        context.facts[key] = set(counter)
        context.primary[key] = counter.most_common(1)[0][0]
    for index, groups in version_hits:
        name = VERSION_RULES[index][0]
        version = groups.get("version") or groups.get("version2")
        if version and name not in context.versions:
            context.versions[name] = version
    return context
