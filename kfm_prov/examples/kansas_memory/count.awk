# count.awk: items per county and decade from the Kansas Memory catalogue (item_id,title,
# county,year,format). Prints "county,decade,items" rows, unsorted, and the total on stderr.
BEGIN { FS = "," }
FNR == 1 { next }
{
    decade = int($(NF - 1) / 10) * 10
    count[$(NF - 2) "," decade "s"]++
    total++
}
END {
    for (key in count) { print key "," count[key] }
    print total > "/dev/stderr"
}
