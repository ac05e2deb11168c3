// etcd, as its own server/main.go builds it: the tests' control plane keeps its state here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
