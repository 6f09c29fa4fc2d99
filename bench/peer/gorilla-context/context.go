// Package context stands in for github.com/gorilla/context, which Debian does not package,
// so that bench/peer_upload.sh can build lfs-test-server offline. It is lfsgate's own code
// and offers only what lfs-test-server calls: Set and Get of a value per request.
//
// Values live in a map keyed by the request, behind a mutex (net/http serves requests on
// many goroutines). Nothing in lfs-test-server clears them, so the first Set for a request
// starts a goroutine that drops the request's values once its context is done (net/http
// cancels it when ServeHTTP returns): the map does not grow with every request served.
package context

import (
	"net/http"
	"sync"
)

var (
	mu   sync.Mutex
	vals = map[*http.Request]map[interface{}]interface{}{}
)

// Set stores val under key for request r. Safe from any goroutine.
func Set(r *http.Request, key, val interface{}) {
	mu.Lock()
	defer mu.Unlock()
	m, ok := vals[r]
	if !ok {
		m = map[interface{}]interface{}{}
		vals[r] = m
		go func() {
			<-r.Context().Done()
			mu.Lock()
			delete(vals, r)
			mu.Unlock()
		}()
	}
	m[key] = val
}

// Get returns the value stored under key for request r, or nil when there is none. Safe
// from any goroutine.
func Get(r *http.Request, key interface{}) interface{} {
	mu.Lock()
	defer mu.Unlock()
	return vals[r][key]
}
