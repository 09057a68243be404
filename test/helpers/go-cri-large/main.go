// A CRI client that sends large requests: runtime.v1.RuntimeService/Version with a
// VersionRequest whose `version` field holds N bytes, once per size given, all on one
// connection, each answered before the next is sent. With -authority-path it dials the
// way the kubelet before 1.30 did (the socket path as :authority, which the daemon's
// front rewrites); without, the usual unix:// target (:authority "localhost").
// With -call update it sends UpdateRuntimeConfig with an N-byte pod_cidr instead, which
// the daemon must refuse with INVALID_ARGUMENT (a status whose message names the value).
// It prints one line per call: "<size> ok <response bytes>" (or "<size> invalid-argument
// <message length>") and exits non-zero at the first other outcome.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error)      { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                               { return "proto" }
func (rawCodec) String() string                             { return "proto" }

const maxMsg = 16 << 20

func varint(b []byte, v uint64) []byte {
	for ; v >= 0x80; v >>= 7 {
		b = append(b, byte(v)|0x80)
	}
	return append(b, byte(v))
}

// field encodes a length-delimited field number f.
func field(f int, body []byte) []byte {
	return append(varint([]byte{byte(f<<3 | 2)}, uint64(len(body))), body...)
}

// updateRequest encodes UpdateRuntimeConfigRequest{runtime_config{network_config{pod_cidr: n x}}}.
func updateRequest(n int) []byte {
	cidr := make([]byte, n)
	for i := range cidr {
		cidr[i] = 'x'
	}
	return field(1, field(1, field(1, cidr)))
}

// versionRequest encodes VersionRequest{version: n bytes of 'x'} (field 1, wire type 2).
func versionRequest(n int) []byte {
	b := []byte{0x0a}
	for v := uint64(n); ; v >>= 7 {
		if v < 0x80 {
			b = append(b, byte(v))
			break
		}
		b = append(b, byte(v)|0x80)
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = 'x'
	}
	return append(b, body...)
}

func main() {
	authorityPath := flag.Bool("authority-path", false, "send the socket path as :authority")
	call := flag.String("call", "version", "version or update")
	callTimeout := flag.Duration("timeout", 20*time.Second, "deadline of each call")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: go-cri-large [-authority-path] SOCKET SIZE...")
		os.Exit(2)
	}
	socket := flag.Arg(0)
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxMsg+1024), grpc.MaxCallRecvMsgSize(maxMsg+1024)),
	}
	target := "unix://" + socket
	if *authorityPath {
		target = socket
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	}
	conn, err := grpc.Dial(target, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	for _, arg := range flag.Args()[1:] {
		n, err := strconv.Atoi(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad size:", arg)
			os.Exit(2)
		}
		req, method := versionRequest(n), "/runtime.v1.RuntimeService/Version"
		if *call == "update" {
			req, method = updateRequest(n), "/runtime.v1.RuntimeService/UpdateRuntimeConfig"
		}
		var resp []byte
		ctx, cancel := context.WithTimeout(context.Background(), *callTimeout)
		err = conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{}))
		cancel()
		if *call == "update" {
			if st, _ := status.FromError(err); err != nil && st.Code() == codes.InvalidArgument {
				fmt.Printf("%d invalid-argument %d\n", n, len(st.Message()))
				continue
			}
			fmt.Fprintf(os.Stderr, "%d: want INVALID_ARGUMENT, got %v\n", n, err)
			os.Exit(1)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%d: invoke: %v\n", n, err)
			os.Exit(1)
		}
		fmt.Printf("%d ok %d\n", n, len(resp))
	}
}
