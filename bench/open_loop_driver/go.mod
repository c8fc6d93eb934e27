module wallet-lake/bench/open_loop_driver

go 1.22
