module greenlet-bench

go 1.19
