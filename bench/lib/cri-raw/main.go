// CRI calls from a Go gRPC client (grpc-go: the kubelet's and crictl's library), without
// crictl, which Debian does not ship. Two ways:
//
//	cri-raw SOCKET /runtime.v1.RuntimeService/Method < request.bin > response.bin
//
// one call per process, the way crictl makes it: dial, one unary call, exit.
//
//	cri-raw SOCKET < frames > results
//
// a long-lived client, the way the kubelet reads: one connection, calls one after another
// in the order they come on stdin, each timed here around the call alone (the caller's
// own pauses are not in the figure). A frame in: method length (uint16), method, request
// length (uint32), request; one out per call: gRPC code (uint32), nanoseconds (uint64),
// answer length (uint32), answer (the status message when the code is not OK). Big-endian.
// It exits when stdin ends.
//
// Requests and answers are the encoded protobuf messages: the bench encodes and decodes
// them with the project's CRI proto, so this program needs no generated code.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

const callTimeout = 2 * time.Minute

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

func dial(ctx context.Context, socket string) *grpc.ClientConn {
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	conn, err := grpc.DialContext(ctx, "unix://"+socket, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithContextDialer(dialer))
	if err != nil {
		fail("dialing "+socket, err)
	}
	return conn
}

func oneCall(socket, method string) {
	req, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading the request", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	conn := dial(ctx, socket)
	defer conn.Close()
	var resp []byte
	if err := conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(bytesCodec{})); err != nil {
		fail(method, err)
	}
	if _, err := os.Stdout.Write(resp); err != nil {
		fail("writing the answer", err)
	}
}

// readFrame reads one call's method and request; io.EOF when stdin ended between frames.
func readFrame(in *bufio.Reader) (string, []byte, error) {
	var n16 uint16
	if err := binary.Read(in, binary.BigEndian, &n16); err != nil {
		return "", nil, err
	}
	method := make([]byte, n16)
	if _, err := io.ReadFull(in, method); err != nil {
		return "", nil, err
	}
	var n32 uint32
	if err := binary.Read(in, binary.BigEndian, &n32); err != nil {
		return "", nil, err
	}
	req := make([]byte, n32)
	if _, err := io.ReadFull(in, req); err != nil {
		return "", nil, err
	}
	return string(method), req, nil
}

func calls(socket string) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	conn := dial(ctx, socket)
	cancel()
	defer conn.Close()
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	head := make([]byte, 16)
	for {
		method, req, err := readFrame(in)
		if err == io.EOF {
			if err := out.Flush(); err != nil {
				fail("writing a result", err)
			}
			return
		}
		if err != nil {
			fail("reading a call", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), callTimeout)
		var resp []byte
		start := time.Now()
		err = conn.Invoke(cctx, method, &req, &resp, grpc.ForceCodec(bytesCodec{}))
		took := time.Since(start)
		ccancel()
		st := status.Convert(err)
		if err != nil {
			resp = []byte(st.Message())
		}
		binary.BigEndian.PutUint32(head[0:], uint32(st.Code()))
		binary.BigEndian.PutUint64(head[4:], uint64(took.Nanoseconds()))
		binary.BigEndian.PutUint32(head[12:], uint32(len(resp)))
		out.Write(head)
		out.Write(resp)
		// Flushed only when no further call waits in stdin: the caller may have sent many at once.
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				fail("writing a result", err)
			}
		}
	}
}

func main() {
	switch len(os.Args) {
	case 3:
		oneCall(os.Args[1], os.Args[2])
	case 2:
		calls(os.Args[1])
	default:
		os.Stderr.WriteString("usage: cri-raw SOCKET [/package.Service/Method] < request(s) > answer(s)\n")
		os.Exit(2)
	}
	if err := os.Stdout.Close(); err != nil {
		fail("closing stdout", err)
	}
}
