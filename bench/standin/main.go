// Command standin is the model stand-in of Kiln's gateway benchmark: the
// cheapest server that keeps the inference container contract (GET /ping,
// POST /invocations), so that what is measured is the proxy in front of it.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

var answer = []byte(`{"predictions":[{"score":0.73,"label":"pos"}]}`)

func main() {
	port := os.Getenv("SAGEMAKER_BIND_TO_PORT")
	if port == "" {
		port = os.Getenv("PORT")
	}
	if port == "" {
		fmt.Fprintln(os.Stderr, "standin: set SAGEMAKER_BIND_TO_PORT or PORT")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}
