#!/bin/sh
# nhgis_tracts: join the NHGIS census table to the tract polygons, with awk.
#
# Not a line of Python: kfm-prov captures it from the outside. Run it through
#
#   kfm-prov run -f nhgis_tracts -p pipelines/nhgis_tracts \
#       -i data/raw/nhgis_tracts/nhgis_tract_2020.csv \
#       -i data/raw/nhgis_tracts/tracts_2020.geojson \
#       -o tracts_population.geojson:product --param year=2020 --param join_key=GISJOIN \
#       --git-dir pipelines -- \
#       sh pipelines/nhgis_tracts/join.sh data/raw/nhgis_tracts/nhgis_tract_2020.csv \
#          data/raw/nhgis_tracts/tracts_2020.geojson
#
# kfm-prov hashes the inputs before the command starts and after it ends, gives it
# KFM_ARTIFACTS_DIR to write into, keeps its output in the run's logs/ and records its
# exit code as the run's status.
set -eu
table=${1:?usage: join.sh TABLE.csv TRACTS.geojson}
tracts=${2:?usage: join.sh TABLE.csv TRACTS.geojson}
out=${KFM_ARTIFACTS_DIR:?run me through kfm-prov run}/tracts_population.geojson
here=$(dirname "$0")

awk -F, -f "$here/join.awk" "$table" "$tracts" > "$out"
echo "wrote $(grep -c '"total_population"' "$out") tract features to tracts_population.geojson"
