// An independent SPDY/3.1 peer for sandlot's streaming tests: it speaks to the server
// the way client-go does (HTTP/1.1 Upgrade, then moby/spdystream), so the tests check
// sandlot's framing against someone else's. Built in GOPATH mode from Debian's
// golang-github-docker-spdystream-dev; no module download.
//
// It prints one JSON object describing what it saw on stdout.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

const keepBytes = 64 * 1024

type sink struct {
	mu    sync.Mutex
	n     int64
	hash  io.Writer
	keep  []byte
	onAdd func(total int64)
}

func newSink() (*sink, func() string) {
	h := sha256.New()
	s := &sink{hash: h}
	return s, func() string { return hex.EncodeToString(h.Sum(nil)) }
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.n += int64(len(p))
	s.hash.Write(p)
	if len(s.keep) < keepBytes {
		room := keepBytes - len(s.keep)
		if room > len(p) {
			room = len(p)
		}
		s.keep = append(s.keep, p[:room]...)
	}
	total := s.n
	s.mu.Unlock()
	if s.onAdd != nil {
		s.onAdd(total)
	}
	return len(p), nil
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type result struct {
	HTTPStatus   int               `json:"httpStatus"`
	HTTPBody     string            `json:"httpBody,omitempty"`
	Protocol     string            `json:"protocol"`
	Error        string            `json:"error,omitempty"`
	ErrorStream  string            `json:"errorStream"`
	StdoutLen    int64             `json:"stdoutLen"`
	StdoutSha256 string            `json:"stdoutSha256"`
	Stdout       string            `json:"stdout"`
	Stderr       string            `json:"stderr"`
	Forwards     []forwardResult   `json:"forwards,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
}

type forwardResult struct {
	Data  string `json:"data"`
	Error string `json:"error"`
}

func fail(r *result, format string, args ...interface{}) {
	r.Error = fmt.Sprintf(format, args...)
	emit(r)
	os.Exit(1)
}

func emit(r *result) {
	json.NewEncoder(os.Stdout).Encode(r)
}

// pattern is deterministic stdin the test can hash on its side.
func pattern(n int64) io.Reader {
	return io.LimitReader(&patternReader{}, n)
}

type patternReader struct{ i int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	for k := range b {
		b[k] = byte('a' + (p.i % 26))
		if p.i%61 == 60 {
			b[k] = '\n'
		}
		p.i++
	}
	return len(b), nil
}

func main() {
	mode := flag.String("mode", "exec", "exec | portforward")
	target := flag.String("url", "", "streaming URL")
	protocols := flag.String("protocols", "v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io", "comma-separated X-Stream-Protocol-Version offers")
	stdinText := flag.String("stdin-text", "", "stdin content")
	stdinGen := flag.Int64("stdin-gen", -1, "generate this many bytes of stdin")
	useStdin := flag.Bool("stdin", false, "open a stdin stream")
	useStdout := flag.Bool("stdout", true, "open a stdout stream")
	useStderr := flag.Bool("stderr", true, "open a stderr stream")
	tty := flag.Bool("tty", false, "open a resize stream")
	resize := flag.String("resize", "", "WxH sent on the resize stream after connecting")
	holdStdin := flag.Bool("hold-stdin", false, "do not close stdin after writing it")
	vanishAfter := flag.Int64("vanish-after", -1, "drop the TCP connection after this many stdout bytes")
	port := flag.Int("port", 0, "portforward: remote port")
	requests := flag.Int("requests", 1, "portforward: concurrent requests")
	payload := flag.String("payload", "", "portforward: bytes to send on each data stream (%d = request number)")
	flag.Parse()

	r := &result{}
	u, err := url.Parse(*target)
	if err != nil {
		fail(r, "parsing url: %v", err)
	}
	raw, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		fail(r, "dialing: %v", err)
	}
	req, _ := http.NewRequest("POST", *target, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, p := range strings.Split(*protocols, ",") {
		if p != "" {
			req.Header.Add("X-Stream-Protocol-Version", p)
		}
	}
	if err := req.Write(raw); err != nil {
		fail(r, "writing upgrade request: %v", err)
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		fail(r, "reading upgrade response: %v", err)
	}
	r.HTTPStatus = resp.StatusCode
	r.Protocol = resp.Header.Get("X-Stream-Protocol-Version")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := ioutil.ReadAll(resp.Body)
		r.HTTPBody = string(body)
		r.Headers = map[string]string{"X-Accepted-Stream-Protocol-Versions": strings.Join(resp.Header["X-Accepted-Stream-Protocol-Versions"], ",")}
		emit(r)
		return
	}
	conn, err := spdystream.NewConnection(&bufConn{raw, br}, false)
	if err != nil {
		fail(r, "starting spdy connection: %v", err)
	}
	go conn.Serve(spdystream.NoOpStreamHandler)

	open := func(h http.Header) *spdystream.Stream {
		s, err := conn.CreateStream(h, nil, false)
		if err != nil {
			fail(r, "creating stream %v: %v", h, err)
		}
		if err := s.WaitTimeout(30 * time.Second); err != nil {
			fail(r, "waiting for reply to %v: %v", h, err)
		}
		return s
	}

	if *mode == "portforward" {
		r.Forwards = make([]forwardResult, *requests)
		var wg sync.WaitGroup
		for i := 0; i < *requests; i++ {
			// Streams are created in order, as client-go does, then used concurrently.
			id := strconv.Itoa(i)
			errS := open(http.Header{"Streamtype": {"error"}, "Port": {strconv.Itoa(*port)}, "Requestid": {id}})
			errS.Close() // the client never writes on the error stream
			dataS := open(http.Header{"Streamtype": {"data"}, "Port": {strconv.Itoa(*port)}, "Requestid": {id}})
			wg.Add(1)
			go func(i int, dataS, errS *spdystream.Stream) {
				defer wg.Done()
				var ew sync.WaitGroup
				ew.Add(1)
				go func() {
					defer ew.Done()
					b, _ := ioutil.ReadAll(errS)
					r.Forwards[i].Error = string(b)
				}()
				msg := strings.ReplaceAll(*payload, "%d", strconv.Itoa(i))
				dataS.Write([]byte(msg))
				dataS.Close()
				b, _ := ioutil.ReadAll(dataS)
				r.Forwards[i].Data = string(b)
				ew.Wait()
			}(i, dataS, errS)
		}
		wg.Wait()
		conn.Close()
		emit(r)
		return
	}

	errorStream := open(http.Header{"Streamtype": {"error"}})
	var stdinStream, stdoutStream, stderrStream, resizeStream *spdystream.Stream
	if *useStdin {
		stdinStream = open(http.Header{"Streamtype": {"stdin"}})
	}
	if *useStdout {
		stdoutStream = open(http.Header{"Streamtype": {"stdout"}})
	}
	if *useStderr && !*tty {
		stderrStream = open(http.Header{"Streamtype": {"stderr"}})
	}
	if *tty {
		resizeStream = open(http.Header{"Streamtype": {"resize"}})
	}

	errCh := make(chan string, 1)
	go func() {
		b, _ := ioutil.ReadAll(errorStream)
		errCh <- string(b)
	}()
	if resizeStream != nil && *resize != "" {
		var w, h int
		fmt.Sscanf(*resize, "%dx%d", &w, &h)
		json.NewEncoder(resizeStream).Encode(map[string]int{"Width": w, "Height": h})
	}
	if stdinStream != nil {
		go func() {
			var src io.Reader = strings.NewReader(*stdinText)
			if *stdinGen >= 0 {
				src = pattern(*stdinGen)
			}
			io.Copy(stdinStream, src)
			if !*holdStdin {
				stdinStream.Close()
			}
		}()
	}
	var wg sync.WaitGroup
	out, outSum := newSink()
	if *vanishAfter >= 0 {
		out.onAdd = func(total int64) {
			if total >= *vanishAfter {
				raw.Close()
				r.StdoutLen = total
				r.Stdout = string(out.keep)
				emit(r)
				os.Exit(0)
			}
		}
	}
	errOut, _ := newSink()
	if stdoutStream != nil {
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(out, stdoutStream) }()
	}
	if stderrStream != nil {
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(errOut, stderrStream) }()
	}
	wg.Wait()
	r.ErrorStream = <-errCh
	r.StdoutLen = out.n
	r.StdoutSha256 = outSum()
	r.Stdout = string(out.keep)
	r.Stderr = string(errOut.keep)
	conn.Close()
	emit(r)
}
