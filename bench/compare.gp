# Draws bench/compare.sh's medians: throughput and p99 per case, side by side.
# Called by compare.sh with: medians (file of "case rate p99_ms"), output (PNG path), machine.
set terminal pngcairo size 1200,520 font "sans,10"
set output output
set datafile separator " "
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by -30 left noenhanced
set key off
set multiplot layout 1,2 title "GopherMQ vs nginx return 200 and Nchan (" . machine . ", medians)"

set title "throughput, 64 connections (requests/s)"
set yrange [0:*]
plot "< grep -v -e gophermq-batch -e gophermq-publish-fixed " . medians \
     using 2:xtic(1) linecolor rgb "#3b7dd8", \
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.7 notitle

set title "p99 latency (ms)"
plot "< grep -v gophermq-batch " . medians using 3:xtic(1) linecolor rgb "#d8763b", \
     "" using 0:3:(sprintf("%.2f", $3)) with labels offset 0,0.7 notitle

unset multiplot
