module hush/tools/gocompat-oracle

go 1.22
