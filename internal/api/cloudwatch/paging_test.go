package cloudwatch

import (
	"errors"
	"slices"
	"testing"
)

// offsetPage walks a list page by page, and refuses a token it did not
// make without listing.
func TestOffsetPage(t *testing.T) {
	items := []int{0, 1, 2, 3, 4}
	list := func() ([]int, error) { return items, nil }
	var got [][]int
	token := ""
	for range 10 {
		page, next, err := offsetPage("k", token, 2, list)
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		got = append(got, page)
		if next == "" {
			break
		}
		token = next
	}
	if want := [][]int{{0, 1}, {2, 3}, {4}}; !slices.EqualFunc(got, want, slices.Equal[[]int]) {
		t.Errorf("pages %v, want %v", got, want)
	}

	// A list that shrank under the token ends it, empty.
	page, next, err := offsetPage("k", encodeToken("k", "9"), 2, list)
	if len(page) != 0 || next != "" || err != nil {
		t.Errorf("past the end: %v %q %v, want an empty last page", page, next, err)
	}

	for _, bad := range []string{"%%", encodeToken("other", "2"), encodeToken("k", "-1"), encodeToken("k", "x")} {
		listed := false
		_, _, err := offsetPage("k", bad, 2, func() ([]int, error) { listed = true; return items, nil })
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != "InvalidNextToken" || listed {
			t.Errorf("token %q: %v (listed: %v), want InvalidNextToken before listing", bad, err, listed)
		}
	}

	fail := errors.New("store down")
	if _, _, err := offsetPage("k", "", 2, func() ([]int, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Errorf("list error: %v, want %v", err, fail)
	}
}
