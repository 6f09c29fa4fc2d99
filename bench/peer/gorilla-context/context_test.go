// Checks the stand-in's two promises: a value set for a request is read back for that
// request only, and a request's values are dropped once net/http has served it.
// Run: cd bench/peer/gorilla-context && GOFLAGS=-mod=mod GOPROXY=off go test
package context

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSetGetPerRequest(t *testing.T) {
	var got, other interface{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Set(r, "USER", r.URL.Path)
		got = Get(r, "USER")
		other = Get(httptest.NewRequest("GET", "/", nil), "USER")
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/alice")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "/alice" {
		t.Errorf("Get after Set: %v, want /alice", got)
	}
	if other != nil {
		t.Errorf("Get on a request without values: %v, want nil", other)
	}
	// ServeHTTP has returned: the request's context is done and its values must go.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(vals)
		mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests' values still held 5 s after they were served", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
