// A CRI client the way the kubelet before 1.30 dialled its runtime: the socket path as
// a passthrough target with a custom dialer, so grpc-go sends the path as :authority.
// It calls runtime.v1.RuntimeService/Version with a raw-bytes codec (no generated code)
// and prints the response bytes as hex.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error)      { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                               { return "proto" }
func (rawCodec) String() string                             { return "proto" }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-cri-version SOCKET")
		os.Exit(2)
	}
	socket := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, socket,
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	// VersionRequest{version: "v1"}: field 1, wire type 2.
	req := []byte{0x0a, 0x02, 'v', '1'}
	var resp []byte
	for i := 0; i < 2; i++ { // twice: the second call exercises HPACK's dynamic table
		if err := conn.Invoke(ctx, "/runtime.v1.RuntimeService/Version", &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
			fmt.Fprintln(os.Stderr, "invoke:", err)
			os.Exit(1)
		}
	}
	fmt.Println(hex.EncodeToString(resp))
}
