#!/usr/bin/env bash
# Download the npm tarballs pinned in infra/provider-schemas.txt into DEST (default
# .cache/tf-schema) with `npm pack`, which fetches a package's tarball from the registry
# without installing it or its dependencies. Tarballs already there are kept; dev/tf_schema.py
# checks each one's integrity and derives the compact schemas the offline test reads.
#
#   dev/tf-schema-fetch.sh [DEST]
#
# Needs npm (Node.js). Cloud Build runs this in a node image before the Python steps.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/.cache/tf-schema}"
pins="$repo/infra/provider-schemas.txt"

command -v npm >/dev/null || {
  echo "tf-schema-fetch.sh: npm not found. Install Node.js with npm (Debian: apt-get install npm) to fetch the provider schemas." >&2
  exit 127
}
mkdir -p "$dest"

grep -Ev '^[[:space:]]*(#|$)' "$pins" | while read -r _source _version package version _integrity; do
  # @cdktf/provider-google@16.12.1 -> cdktf-provider-google-16.12.1.tgz
  tarball="$(echo "${package#@}" | tr / -)-$version.tgz"
  if [[ -s "$dest/$tarball" ]]; then
    continue
  fi
  echo "tf-schema-fetch.sh: npm pack $package@$version" >&2
  # Bounded: each request times out after 2 minutes, with at most two retries.
  npm pack --silent --fetch-timeout=120000 --fetch-retries=2 --pack-destination "$dest" "$package@$version" >/dev/null
  [[ -s "$dest/$tarball" ]] || {
    echo "tf-schema-fetch.sh: npm pack did not write $dest/$tarball" >&2
    exit 1
  }
done
