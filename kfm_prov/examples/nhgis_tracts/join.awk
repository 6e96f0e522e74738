# join.awk: add a census table's columns to the tract polygons that share its GISJOIN key.
#
#   awk -F, -f join.awk TABLE.csv TRACTS.geojson > JOINED.geojson
#
# The table comes first (a CSV with GISJOIN in its first column); the GeoJSON must hold one
# feature per line, as NHGIS's extracts converted with `ogr2ogr -lco RS=NO` do. Tracts with
# no row in the table are counted, and make the join fail (exit 3).

NR == FNR {
    if (FNR == 1) { next }
    population[$1] = $6
    housing[$1] = $7
    next
}

match($0, /"GISJOIN": "G[0-9]+"/) {
    key = substr($0, RSTART + 12, RLENGTH - 13)
    if (key in population) {
        sub(/"GISJOIN": "G[0-9]+"/, "&, \"total_population\": " population[key] \
            ", \"housing_units\": " housing[key])
        joined++
    } else {
        unmatched++
    }
}

{ print }

END {
    printf "joined %d tracts, %d without a table row\n", joined, unmatched > "/dev/stderr"
    if (unmatched > 0 || joined == 0) { exit 3 }
}
