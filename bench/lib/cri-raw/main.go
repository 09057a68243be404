// One CRI call per process, the way crictl makes it (a Go gRPC client that dials the
// socket, makes one unary call and exits), without crictl, which Debian does not ship:
//
//	cri-raw SOCKET /runtime.v1.RuntimeService/Method < request.bin > response.bin
//
// The request and the answer are the encoded protobuf messages: the bench encodes and
// decodes them with the project's CRI proto, so this program needs no generated code.
package main

import (
	"context"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
)

// bytesCodec passes the already-encoded message through.
type bytesCodec struct{}

func (bytesCodec) Marshal(v interface{}) ([]byte, error)      { return *(v.(*[]byte)), nil }
func (bytesCodec) Unmarshal(data []byte, v interface{}) error { *(v.(*[]byte)) = data; return nil }
func (bytesCodec) Name() string                               { return "proto" }
func (bytesCodec) String() string                             { return "proto" }

func fail(what string, err error) {
	os.Stderr.WriteString(what + ": " + err.Error() + "\n")
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		os.Stderr.WriteString("usage: cri-raw SOCKET /package.Service/Method < request > response\n")
		os.Exit(2)
	}
	socket, method := os.Args[1], os.Args[2]
	req, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading the request", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	conn, err := grpc.DialContext(ctx, "unix://"+socket, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithContextDialer(dial))
	if err != nil {
		fail("dialing "+socket, err)
	}
	defer conn.Close()
	var resp []byte
	if err := conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(bytesCodec{})); err != nil {
		fail(method, err)
	}
	if _, err := os.Stdout.Write(resp); err != nil {
		fail("writing the answer", err)
	}
}
