package server

import (
	"io"
	"net/http"
	"testing"
)

// A request that arrives while no agent serves (between a reload's stop and
// start) waits for the next agent instead of being refused, and every agent
// answers on the same bound address.
func TestHandoffKeepsTheSocketBetweenAgents(t *testing.T) {
	h, err := ListenHandoff("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	serve := func(name string) (*http.Server, chan struct{}) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, name)
		})}
		stopped := make(chan struct{})
		go func() { defer close(stopped); _ = srv.Serve(h.Listener()) }()
		return srv, stopped
	}
	url := "http://" + h.Listener().Addr().String() + "/"
	get := func() (string, error) {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	first, stopped := serve("first")
	if got, err := get(); err != nil || got != "first" {
		t.Fatalf("first agent: %q, %v", got, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	<-stopped
	// Nobody serves now: the request is accepted by the socket and waits.
	answer := make(chan string, 1)
	go func() {
		got, err := get()
		if err != nil {
			got = err.Error()
		}
		answer <- got
	}()
	second, _ := serve("second")
	defer second.Close()
	if got := <-answer; got != "second" {
		t.Errorf("request made between agents: %q, want the second agent's answer", got)
	}
}
