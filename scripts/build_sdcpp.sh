#!/usr/bin/env bash
# Build the real stable-diffusion.cpp engine for the test suite, once, into ~/.cache.
#
# Why: PyPI ships stable-diffusion-cpp-python only as a source package, and that package also
# carries the whole stable-diffusion.cpp tree, so one download gives both engines we test:
#   * a wheel of the Python bindings (installed into the active environment),
#   * the `sd-cli` executable (CLI mode), and
#   * the `sd-server` executable (its OpenAI-shaped HTTP server), next to sd-cli.
# All are cached per version under ${ABSTRACTVISION_SDCPP_CACHE:-~/.cache/abstractvision/sdcpp}
# so a second run costs seconds instead of ~4 minutes. The two executables share one configure
# and one engine library, so whichever of them is missing is built in a single cmake build.
#
# Prints the path of the built sd-cli on its last line (sd-server is `sd-server` in the same folder).
set -euo pipefail
version="${SDCPP_PY_VERSION:-0.4.5}"
cache="${ABSTRACTVISION_SDCPP_CACHE:-$HOME/.cache/abstractvision/sdcpp}/$version"
python="${PYTHON:-python3}"
jobs="${SDCPP_BUILD_JOBS:-$(nproc)}"
mkdir -p "$cache"
sdist="$cache/stable_diffusion_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  "$python" -m pip download --no-deps --no-binary :all: -d "$cache" "stable-diffusion-cpp-python==$version" >&2
fi

wheel=$(ls "$cache"/wheels/stable_diffusion_cpp_python-"$version"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  echo "building the stable-diffusion-cpp-python $version wheel (about 2 minutes)..." >&2
  CMAKE_BUILD_PARALLEL_LEVEL="$jobs" "$python" -m pip wheel --no-deps -w "$cache/wheels" "$sdist" >&2
  wheel=$(ls "$cache"/wheels/stable_diffusion_cpp_python-"$version"-*.whl | head -1)
fi
"$python" -m pip install -q --no-deps "$wheel" >&2
# The bindings need these at run time; the wheel was installed without its dependencies.
"$python" -m pip install -q "typing_extensions" "pillow" >&2

bin="$cache/bin"
missing=()
for target in sd-cli sd-server; do
  [ -x "$bin/$target" ] || missing+=("$target")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "building ${missing[*]} from the same source (about 2 minutes)..." >&2
  src="$cache/src"
  rm -rf "$src" && mkdir -p "$src"
  tar xzf "$sdist" -C "$src" --strip-components=1
  cmake -S "$src/vendor/stable-diffusion.cpp" -B "$src/build" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$src/build" --target "${missing[@]}" -j "$jobs" >&2
  mkdir -p "$bin"
  for target in "${missing[@]}"; do
    built=$(find "$src/build" -type f -name "$target" -perm -u+x | head -1)
    cp "$built" "$bin/$target.tmp" && mv "$bin/$target.tmp" "$bin/$target"
  done
  rm -rf "$src"
fi
echo "$bin/sd-cli"
