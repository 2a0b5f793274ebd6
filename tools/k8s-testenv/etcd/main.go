// Command etcd is etcd's own server main (go.etcd.io/etcd/server/v3/etcdmain), built in this module so it
// shares the dependency versions that kube-apiserver is built with. Test tooling only.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
