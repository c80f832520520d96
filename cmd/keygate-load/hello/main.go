// Command hello is the baseline keygate-load measures keygate against: a
// bare net/http server that answers every request with a fixed JSON body
// (one the jwks and discovery modes accept), on a loopback address.
//
//	hello -listen 127.0.0.1:8181 &
//	keygate-load -url http://127.0.0.1:8181 -mode jwks
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8181", "address to listen on")
	flag.Parse()
	body := []byte(`{"issuer":"hello","keys":[]}`)
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})))
}
