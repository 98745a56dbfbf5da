package speedtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The upload load is netpulse's own, not speedtest-go's: its body reader
// hands out 1 KB per Read, which net/http turns into one 1 KB write
// system call each (about 2 Gbit/s on loopback where downloads reach 25);
// its worker tuner adds a worker per second and drops some when more than
// 2 MB per worker await the server's answer, which a fast link always has;
// and it ignores cancellation. The protocol is the same: POST upload.php
// with an octet-stream body, answered with a 2xx.
const (
	// uploadBodySize is one request's body: large enough that the request
	// and its answer cost little (one round trip per 8 MB), small enough
	// for Ookla's servers.
	uploadBodySize = 8 << 20
	// uploadWriteSize is one write to the socket.
	uploadWriteSize = 256 << 10
)

// uploadBlock is the incompressible content of every upload body: a link
// that compresses cannot make an upload look faster.
var uploadBlock = sync.OnceValue(func() []byte {
	b := make([]byte, 4<<20)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
})

// uploadBody is one request's body: n bytes of uploadBlock from a random
// offset.
type uploadBody struct {
	off, left int
}

func newUploadBody(n int) *uploadBody {
	return &uploadBody{off: rand.N(len(uploadBlock())), left: n}
}

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	block := uploadBlock()
	n := copy(p[:min(len(p), b.left)], block[b.off:])
	b.off = (b.off + n) % len(block)
	b.left -= n
	return n, nil
}

// writeTo writes up to limit bytes of the body to w straight from the
// block, uploadWriteSize at a time (see meteredConn.ReadFrom).
func (b *uploadBody) writeTo(w io.Writer, limit int64) (int64, error) {
	block := uploadBlock()
	var total int64
	for b.left > 0 && total < limit {
		n := min(b.left, uploadWriteSize, len(block)-b.off, int(limit-total))
		m, err := w.Write(block[b.off : b.off+n])
		total += int64(m)
		b.left -= m
		b.off = (b.off + m) % len(block)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// ReadFrom lets net/http hand an upload body to the connection whole
// (http.Transport copies a request body with io.Copy into the connection,
// through an io.LimitedReader): it is written from uploadBlock in
// uploadWriteSize writes instead of 32 KB copies.
func (c *meteredConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*uploadBody); ok {
			n, err := b.writeTo(c, lr.N)
			lr.N -= n
			return n, err
		}
	}
	buf := make([]byte, uploadWriteSize)
	return io.CopyBuffer(writerOnly{c}, r, buf)
}

// writerOnly hides ReadFrom from io.CopyBuffer (which would call it again).
type writerOnly struct{ io.Writer }

// uploadLoad posts bodies to url on conns parallel requests until ctx
// ends; the session notes the first failure. A failed request is retried
// after failedRequestPause, so a refusing server costs no busy loop.
func uploadLoad(ctx context.Context, client *http.Client, url string, conns int) {
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := uploadOnce(ctx, client, url); err != nil && ctx.Err() == nil {
					select {
					case <-ctx.Done():
					case <-time.After(failedRequestPause):
					}
				}
			}
		})
	}
	wg.Wait()
}

func uploadOnce(ctx context.Context, client *http.Client, url string) error {
	body := newUploadBody(uploadBodySize)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, io.NopCloser(body))
	if err != nil {
		return err
	}
	req.ContentLength = uploadBodySize
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
