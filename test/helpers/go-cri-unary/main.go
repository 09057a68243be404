// A grpc-go client of the daemon's unary calls (the kubelet's and crictl's library),
// with a raw-bytes codec (no generated code). It prints one line per call:
// "<what> <code> <detail>" and exits non-zero when the connection fails.
//
//	version      Version{version: "go"}: OK and the runtime_version the test server echoes
//	version-gzip the same, the request gzip-compressed (grpc-encoding: gzip)
//	pod-status   PodSandboxStatus{pod_sandbox_id: "go-pod"}: the status and its message
//	status       Status with a 200 ms deadline on a handler that never answers by itself
//	unknown      a method no service has
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error)      { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                               { return "proto" }
func (rawCodec) String() string                             { return "proto" }

// str encodes a string field f (wire type 2) of fewer than 128 bytes.
func str(f int, s string) []byte {
	return append([]byte{byte(f<<3 | 2), byte(len(s))}, s...)
}

// field3 reads string field 3 (VersionResponse.runtime_version) of a short message.
func field3(b []byte) string {
	for i := 0; i+1 < len(b); {
		tag, n := b[i], int(b[i+1])
		if i+2+n > len(b) {
			break
		}
		if tag == 3<<3|2 {
			return string(b[i+2 : i+2+n])
		}
		i += 2 + n
	}
	return "?"
}

func main() {
	socket := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "unix://"+socket, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	call := func(what, method string, req []byte, timeout time.Duration, opts ...grpc.CallOption) {
		cctx, ccancel := context.WithTimeout(ctx, timeout)
		defer ccancel()
		var resp []byte
		err := conn.Invoke(cctx, method, &req, &resp, append(opts, grpc.ForceCodec(rawCodec{}))...)
		st, _ := status.FromError(err)
		switch {
		case err == nil:
			fmt.Println(what, "OK", field3(resp))
		case what == "pod-status":
			fmt.Println(what, st.Code(), st.Message())
		default:
			fmt.Println(what, st.Code())
		}
	}
	call("version", "/runtime.v1.RuntimeService/Version", str(1, "go"), 5*time.Second)
	call("version-gzip", "/runtime.v1.RuntimeService/Version", str(1, "go-gzip"), 5*time.Second, grpc.UseCompressor(gzip.Name))
	call("pod-status", "/runtime.v1.RuntimeService/PodSandboxStatus", str(1, "go-pod"), 5*time.Second)
	call("status", "/runtime.v1.RuntimeService/Status", nil, 200*time.Millisecond)
	call("unknown", "/runtime.v1.RuntimeService/NoSuchMethod", nil, 5*time.Second)
}
