package speedtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"
)

// The download load is netpulse's own too (see upload.go): speedtest-go's
// download workers run to their capture time whatever their context says,
// so a transfer stopped by max_bytes or cancelled went on retrying until
// then. The protocol is the same: GET random{W}x{H}.jpg next to
// upload.php, every byte counts.

// downloadFile is the largest file Ookla servers (and netpulse's) serve:
// 32 MB, one request per 32 MB.
const downloadFile = "random4000x4000.jpg"

// downloadURL is the server's download file, next to its upload.php.
func downloadURL(uploadURL string) string {
	u, err := url.Parse(uploadURL)
	if err != nil {
		return uploadURL
	}
	u.Path = path.Join(path.Dir(u.Path), downloadFile)
	return u.String()
}

// downloadLoad fetches url on conns parallel requests until ctx ends,
// discarding the bodies; the session notes the first failure.
func downloadLoad(ctx context.Context, client *http.Client, url string, conns int) {
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for ctx.Err() == nil {
				if err := downloadOnce(ctx, client, url, buf); err != nil && ctx.Err() == nil {
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

func downloadOnce(ctx context.Context, client *http.Client, url string, buf []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.CopyBuffer(io.Discard, onlyReader{resp.Body}, buf)
	return err
}

// onlyReader hides WriterTo, so io.CopyBuffer reads into buf (256 KB)
// rather than io.Discard's 8 KB pieces.
type onlyReader struct{ io.Reader }
