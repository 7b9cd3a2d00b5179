// Command etcd: the etcd server of go.etcd.io/etcd/server/v3, built for the test cluster.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
