// Prints the real and effective uid of the process: installed setuid-root in the
// conformance image, it shows whether no_new_privs let the setuid bit work.
package main

import (
	"fmt"
	"syscall"
)

func main() {
	fmt.Printf("uid=%d euid=%d\n", syscall.Getuid(), syscall.Geteuid())
}
