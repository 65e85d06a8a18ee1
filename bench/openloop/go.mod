module hwcap.dev/bench/openloop

go 1.22
