package native

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// Paging of the /v1 lists: GET /v1/models?limit=N&next=TOKEN returns the
// first N records (by name) after the one TOKEN names, and the header
// NextTokenHeader with the token of the next page if there is one (also as
// a Link header, rel="next"). Without limit a page holds
// kiln.DefaultPageLimit records; at most kiln.MaxPageLimit.

// NextTokenHeader carries the token of a list's next page.
const NextTokenHeader = "Kiln-Next-Token"

// pageParams reads ?limit and ?next.
func pageParams(q url.Values) (after string, limit int, err error) {
	limit = kiln.DefaultPageLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > kiln.MaxPageLimit {
			return "", 0, kiln.Errorf(kiln.EINVALID, "limit %q must be a whole number from 1 to %d.", api.Truncate(s, 40), kiln.MaxPageLimit)
		}
		limit = n
	}
	if t := q.Get("next"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || len(b) == 0 {
			return "", 0, kiln.Errorf(kiln.EINVALID, "next %q is not a token a list returned.", api.Truncate(t, 40))
		}
		after = string(b)
	}
	return after, limit, nil
}

// pageOf returns the names of the page of limit names after after, and the
// token of the next page ("" if this one is the last).
func pageOf(entries []kiln.Entry, after string, limit int) (names []string, next string) {
	start := 0
	if after != "" {
		start = sort.Search(len(entries), func(i int) bool { return entries[i].Name > after })
	}
	end := min(start+limit, len(entries))
	names = make([]string, 0, end-start)
	for _, e := range entries[start:end] {
		names = append(names, e.Name)
	}
	if end < len(entries) {
		next = base64.RawURLEncoding.EncodeToString([]byte(entries[end-1].Name))
	}
	return names, next
}

// listPage serves GET /v1/<kind>, one page of it.
func listPage[T any](n *API, kind string, named func(kiln.Lister, context.Context, []string) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		after, limit, err := pageParams(r.URL.Query())
		if err != nil {
			n.Fail(w, err)
			return
		}
		l := api.ListerOf(n.Service)
		entries, err := l.Names(r.Context(), kind)
		if err != nil {
			n.Fail(w, err)
			return
		}
		names, next := pageOf(entries, after, limit)
		items, err := named(l, r.Context(), names)
		if err != nil {
			n.Fail(w, err)
			return
		}
		// Each record is encoded on its own, and all before the answer
		// starts, so that an error is still a clean 500, without the copies
		// of one buffer growing to the size of the page.
		parts := make([][]byte, len(items))
		for i := range items {
			if parts[i], err = json.Marshal(items[i]); err != nil {
				n.Fail(w, fmt.Errorf("encode the page: %w", err))
				return
			}
		}
		if next != "" {
			w.Header().Set(NextTokenHeader, next)
			q := url.Values{"limit": {strconv.Itoa(limit)}, "next": {next}}
			w.Header().Set("Link", fmt.Sprintf(`</v1/%s?%s>; rel="next"`, kind, q.Encode()))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "[")
		for i, p := range parts {
			if i > 0 {
				io.WriteString(w, ",")
			}
			w.Write(p)
		}
		io.WriteString(w, "]\n")
	}
}
