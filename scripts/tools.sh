# The tools at the exact versions pinned in scripts/tools/: sourced by scripts/test, scripts/check-deploy and bench/run.
# A folder under .tools/ is installed anew when its pins change, so every machine runs what CI ran.

# pip_tool DIR REQUIREMENTS: every distribution at the version REQUIREMENTS pins, nothing resolved anew.
pip_tool() {
  local dir=$1 requirements=$2
  if ! cmp -s "$requirements" "$dir/.pinned"; then
    echo "installing $(basename "$requirements" .txt) into $dir" >&2
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" -r "$requirements"
    cp "$requirements" "$dir/.pinned"
  fi
}

# npm_tool DIR SOURCE: the packages of SOURCE/package.json at the versions of its committed lockfile (npm ci).
npm_tool() {
  local dir=$1 source=$2
  if ! cmp -s "$source/package-lock.json" "$dir/.pinned"; then
    echo "installing $(basename "$source") tools into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$source/package.json" "$source/package-lock.json" "$dir/"
    npm ci --silent --no-audit --no-fund --prefix "$dir"
    cp "$source/package-lock.json" "$dir/.pinned"
  fi
}

# debian_packages PACKAGE[:PROGRAM]...: Debian's packages, installed with apt-get when their program (by default
# named as the package) is found neither on the PATH nor in /usr/sbin.
debian_packages() {
  local missing=() entry program
  for entry in "$@"; do
    program=${entry#*:}
    command -v "$program" >/dev/null || [ -x "/usr/sbin/$program" ] || missing+=("${entry%%:*}")
  done
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
  fi
}
