#!/usr/bin/env bash
# `buf breaking`: the protos against the last release tag (v*) before this commit, else
# against the previous commit. Usage: tools/buf_breaking.sh [BUF]
#
# The git repository is named by its common folder, so this works in a clone and in a
# `git worktree` (whose .git is a file buf cannot read); a shallow clone is refused, since
# it has no previous commit to compare with.
set -euo pipefail
buf=${1:-buf}
cd "$(dirname "$0")/.."

if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
  echo "buf breaking: a shallow clone has no history to compare with (git fetch --unshallow)" >&2
  exit 1
fi
if ! git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
  echo "buf breaking: the first commit has nothing to compare with"
  exit 0
fi
base=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD~1 2>/dev/null || echo HEAD~1)
commit=$(git rev-parse "$base^{commit}")
if ! git cat-file -e "$commit:protos" 2>/dev/null; then
  echo "buf breaking: no protos/ at $base, nothing to compare with"
  exit 0
fi
repo=$(git rev-parse --path-format=absolute --git-common-dir)
echo "buf breaking against $base ($commit)"
"$buf" breaking --against "$repo#ref=$commit,subdir=protos"
