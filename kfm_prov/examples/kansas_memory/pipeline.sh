#!/bin/sh
# kansas_memory: items per county and decade, from a POSIX shell pipeline that writes its
# own receipts, the way a scheduler's job might. kfm-prov is not called here; afterwards
#
#   kfm-prov record data/work/runs/kansas_memory/<run id>
#
# validates the three receipts against kfm-prov's schemas, re-hashes every file they name,
# and only then writes the run's PROV and indexes it.
#
#   sh pipeline.sh LAKE_ROOT     prints the run directory (relative to LAKE_ROOT) last
set -eu

root=$(cd "${1:?usage: pipeline.sh LAKE_ROOT}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
family=kansas_memory
pipeline_id=pipelines/kansas_memory
input=data/raw/kansas_memory/items.csv
run_id="km-$(date -u +%Y%m%dT%H%M%SZ)-$$"
run_dir=data/work/runs/$family/$run_id
output=$run_dir/artifacts/items_by_county_decade.csv

sha256() {  # the sha256 of stdin, 64 hex digits
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -c1-64
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

started=$(now)
commit=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]
then
    commit="$commit-dirty"
fi
# Which code ran, for the gate to ask the repository: its checkout, this file's path in it
# and the git blob id of its bytes (the remote URL too, when there is one, without any
# user or token in it).
worktree=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || echo)
entry="$(git -C "$here" rev-parse --show-prefix 2>/dev/null || echo)$(basename "$0")"
blob=$(git -C "$here" hash-object "$here/$(basename "$0")" 2>/dev/null || echo)
remote=$(git -C "$here" remote get-url origin 2>/dev/null | sed -e 's#://[^/@]*@#://#' || echo)
json_or_null() { if [ -n "$1" ]; then printf '"%s"' "$1"; else printf null; fi; }
mkdir -p "$root/$run_dir/artifacts" "$root/$run_dir/logs"
log() { echo "$(now) $*" >> "$root/$run_dir/logs/run.log"; }
log "run $run_id started: $family / $pipeline_id at $commit"

# The work: count items per county and decade; the total must add up.
input_digest=$(sha256 < "$root/$input")
{
    echo "county,decade,items"
    awk -f "$here/count.awk" "$root/$input" 2> "$root/$run_dir/logs/total.txt" | LC_ALL=C sort
} > "$root/$output"
items=$(awk 'END { print NR - 1 }' "$root/$input")
counted=$(awk -F, 'NR > 1 { n += $3 } END { print n + 0 }' "$root/$output")
if [ "$items" -eq "$counted" ]; then gate=pass; else gate=fail; fi
log "counted $counted of $items items: $gate"

# The receipts. spec_hash is the sha256 of the spec's RFC 8785 canonical JSON: sorted keys,
# no spaces.
spec='{"outputs":["items_by_county_decade.csv"],"pipeline_id":"pipelines/kansas_memory","steps":["count items by county and decade"]}'
spec_hash=$(printf '%s' "$spec" | sha256)
output_digest=$(sha256 < "$root/$output")
output_size=$(wc -c < "$root/$output" | tr -d ' ')
input_size=$(wc -c < "$root/$input" | tr -d ' ')

cat > "$root/$run_dir/run_manifest.json" <<JSON
{
  "schema_version": "kfm.run_manifest.v1",
  "run_id": "$run_id",
  "spec_hash": "sha256:$spec_hash",
  "inputs": [
    {"path": "$input", "digest": "sha256:$input_digest", "role": "primary",
     "size": $input_size, "media_type": "text/csv"}
  ],
  "outputs": [
    {"path": "$output", "digest": "sha256:$output_digest", "role": "product",
     "size": $output_size, "media_type": "text/csv", "sensitivity": "public"}
  ],
  "params": {"group_by": ["county", "decade"]}
}
JSON
cat > "$root/$run_dir/validation_report.json" <<JSON
{
  "schema_version": "kfm.validation_report.v1",
  "run_id": "$run_id",
  "overall_status": "$gate",
  "gates": [
    {"name": "counts_add_up", "status": "$gate", "details": {"items": $items, "counted": $counted}}
  ],
  "policy": {"labels_emitted": ["public"], "redactions_applied": false}
}
JSON
ended=$(now)
log "run $run_id ended: success"
# The run record goes last: once it says success, the run is complete.
cat > "$root/$run_dir/run_record.json" <<JSON
{
  "schema_version": "kfm.run_record.v2",
  "run_id": "$run_id",
  "dataset_family": "$family",
  "pipeline_id": "$pipeline_id",
  "git_commit": "$commit",
  "code": {"repository": $(json_or_null "$remote"), "worktree": $(json_or_null "$worktree"),
           "entry": "$entry", "entry_blob": $(json_or_null "$blob"), "problems": []},
  "started_at": "$started",
  "ended_at": "$ended",
  "status": "success",
  "runner": {"type": "local", "host": "$(uname -n)"},
  "command": ["sh", "pipeline.sh"]
}
JSON
echo "$run_dir"
