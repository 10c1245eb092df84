package sagemaker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// SageMaker's List* operations: filter, sort, and page the Service's lists.
// A request that filters and sorts by name and creation order only (every
// request but those with a time or status filter, or sorted by status) is
// answered from the records' names (kiln.Lister), reading only the records
// of the page it returns; creation order is the order in which the records
// were written, which is that of their CreationTime. The others read every
// record.
//
// A NextToken names the last item of the page it ended, not an offset, so
// that paging goes on correctly when items are created or deleted between
// pages: the next page starts after that item in the same order.

const (
	defaultMaxResults = 10
	maxMaxResults     = 100
)

// listFilter is what the List* requests have in common.
type listFilter struct {
	SortBy                 string     `json:"SortBy"`
	SortOrder              string     `json:"SortOrder"`
	NextToken              string     `json:"NextToken"`
	MaxResults             *int       `json:"MaxResults"`
	NameContains           string     `json:"NameContains"`
	CreationTimeBefore     *epochTime `json:"CreationTimeBefore"`
	CreationTimeAfter      *epochTime `json:"CreationTimeAfter"`
	LastModifiedTimeBefore *epochTime `json:"LastModifiedTimeBefore"`
	LastModifiedTimeAfter  *epochTime `json:"LastModifiedTimeAfter"`
	StatusEquals           string     `json:"StatusEquals"`
}

// listRequest has the members ListModels and ListEndpointConfigs take.
type listRequest struct {
	SortBy             string     `json:"SortBy"`
	SortOrder          string     `json:"SortOrder"`
	NextToken          string     `json:"NextToken"`
	MaxResults         *int       `json:"MaxResults"`
	NameContains       string     `json:"NameContains"`
	CreationTimeBefore *epochTime `json:"CreationTimeBefore"`
	CreationTimeAfter  *epochTime `json:"CreationTimeAfter"`
}

func (r listRequest) filter() listFilter {
	return listFilter{
		SortBy: r.SortBy, SortOrder: r.SortOrder, NextToken: r.NextToken, MaxResults: r.MaxResults,
		NameContains: r.NameContains, CreationTimeBefore: r.CreationTimeBefore, CreationTimeAfter: r.CreationTimeAfter,
	}
}

// listItem is what listing needs of a record.
type listItem struct {
	name             string
	created, updated time.Time
	status           string
	out              any // the summary to return
}

var nameContainsRE = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

var endpointStatuses = []string{
	kiln.StatusOutOfService, kiln.StatusCreating, kiln.StatusUpdating, kiln.StatusSystemUpdating,
	kiln.StatusRollingBack, kiln.StatusInService, kiln.StatusDeleting, kiln.StatusFailed, kiln.StatusUpdateRollbackFailed,
}

// pageToken is a NextToken's content.
type pageToken struct {
	SortBy    string `json:"b"`
	SortOrder string `json:"o"`
	Name      string `json:"n"`
	Created   int64  `json:"c,omitempty"` // Unix nanoseconds
	Order     int64  `json:"r,omitempty"` // kiln.Entry.Order
	Status    string `json:"s,omitempty"`
}

// listQuery is a List* request, checked and with its defaults.
type listQuery struct {
	f     listFilter
	limit int
	after *pageToken
}

// parse checks f and fills in its defaults. sortKeys are the SortBy values
// the operation takes; the first is the default.
func (f listFilter) parse(sortKeys []string) (listQuery, error) {
	if f.SortBy == "" {
		f.SortBy = sortKeys[0]
	} else if !slices.Contains(sortKeys, f.SortBy) {
		return listQuery{}, validation("SortBy %q is not one of %s.", f.SortBy, strings.Join(sortKeys, ", "))
	}
	switch f.SortOrder {
	case "":
		f.SortOrder = "Descending"
	case "Ascending", "Descending":
	default:
		return listQuery{}, validation("SortOrder %q is not one of Ascending, Descending.", f.SortOrder)
	}
	limit := defaultMaxResults
	if f.MaxResults != nil {
		limit = *f.MaxResults
		if limit < 1 || limit > maxMaxResults {
			return listQuery{}, validation("MaxResults must be between 1 and %d, got %d.", maxMaxResults, limit)
		}
	}
	if f.NameContains != "" && (len(f.NameContains) > kiln.MaxNameLength || !nameContainsRE.MatchString(f.NameContains)) {
		return listQuery{}, validation("NameContains %q must be 1 to %d letters, digits and hyphens.", api.Truncate(f.NameContains, 80), kiln.MaxNameLength)
	}
	if f.StatusEquals != "" && !slices.Contains(endpointStatuses, f.StatusEquals) {
		return listQuery{}, validation("StatusEquals %q is not one of %s.", api.Truncate(f.StatusEquals, 80), strings.Join(endpointStatuses, ", "))
	}
	q := listQuery{f: f, limit: limit}
	if f.NextToken != "" {
		t, err := decodePageToken(f.NextToken)
		// A token from a page in creation order holds either the order
		// (read from the names alone) or the creation time (read from the
		// records), whichever way that page was made; the same request
		// pages the same way.
		if err != nil || t.SortBy != f.SortBy || t.SortOrder != f.SortOrder ||
			(f.SortBy == "CreationTime" && (t.Order != 0) != q.byNames()) {
			return listQuery{}, validation("NextToken is not one this operation returned with the same SortBy and SortOrder.")
		}
		q.after = &t
	}
	return q, nil
}

// byNames says whether the request can be answered from the records' names
// and creation order alone, reading only the records of the page: every
// filter and sort but those on times and status.
func (q listQuery) byNames() bool {
	f := q.f
	return f.SortBy != "Status" && f.StatusEquals == "" &&
		f.CreationTimeBefore == nil && f.CreationTimeAfter == nil &&
		f.LastModifiedTimeBefore == nil && f.LastModifiedTimeAfter == nil
}

// before reports whether a comes before b in the requested order: by the
// sort key, then by name, which is unique, so the order is total and a
// token's position is exact.
func (q listQuery) before(a, b pageToken) bool {
	if q.f.SortOrder == "Descending" {
		a, b = b, a
	}
	switch q.f.SortBy {
	case "CreationTime":
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		if a.Created != b.Created {
			return a.Created < b.Created
		}
	case "Status":
		if a.Status != b.Status {
			return a.Status < b.Status
		}
	}
	return a.Name < b.Name
}

// pageNames answers a request that byNames from the names of kind, and
// fetch, which returns the records of the page's names as listItems (leaving
// out those deleted meanwhile). Only those records are read.
func pageNames(ctx context.Context, l kiln.Lister, kind string, q listQuery, fetch func([]string) ([]listItem, error)) ([]any, string, error) {
	entries, err := l.Names(ctx, kind)
	if err != nil {
		return nil, "", err
	}
	needle := strings.ToLower(q.f.NameContains)
	key := func(e kiln.Entry) pageToken {
		t := pageToken{SortBy: q.f.SortBy, SortOrder: q.f.SortOrder, Name: e.Name}
		if q.f.SortBy == "CreationTime" {
			t.Order = e.Order
		}
		return t
	}
	kept := make([]pageToken, 0, len(entries))
	for _, e := range entries {
		if needle == "" || strings.Contains(strings.ToLower(e.Name), needle) {
			kept = append(kept, key(e))
		}
	}
	sort.Slice(kept, func(i, j int) bool { return q.before(kept[i], kept[j]) })
	start := 0
	if q.after != nil {
		start = sort.Search(len(kept), func(i int) bool { return q.before(*q.after, kept[i]) })
	}
	end := min(start+q.limit, len(kept))
	names := make([]string, 0, end-start)
	for _, t := range kept[start:end] {
		names = append(names, t.Name)
	}
	items, err := fetch(names)
	if err != nil {
		return nil, "", err
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		out = append(out, it.out)
	}
	next := ""
	if end < len(kept) {
		next = encodePageToken(kept[end-1])
	}
	return out, next, nil
}

// page filters, sorts and pages items, every record of the list, as q says.
func page(items []listItem, q listQuery) ([]any, string, error) {
	f := q.f
	needle := strings.ToLower(f.NameContains)
	kept := items[:0:0]
	for _, it := range items {
		switch {
		case needle != "" && !strings.Contains(strings.ToLower(it.name), needle),
			f.StatusEquals != "" && it.status != f.StatusEquals,
			f.CreationTimeBefore != nil && !it.created.Before(f.CreationTimeBefore.time()),
			f.CreationTimeAfter != nil && !it.created.After(f.CreationTimeAfter.time()),
			f.LastModifiedTimeBefore != nil && !it.updated.Before(f.LastModifiedTimeBefore.time()),
			f.LastModifiedTimeAfter != nil && !it.updated.After(f.LastModifiedTimeAfter.time()):
			continue
		}
		kept = append(kept, it)
	}
	key := func(it listItem) pageToken {
		return pageToken{SortBy: f.SortBy, SortOrder: f.SortOrder, Name: it.name, Created: it.created.UnixNano(), Status: it.status}
	}
	sort.Slice(kept, func(i, j int) bool { return q.before(key(kept[i]), key(kept[j])) })
	start := 0
	if q.after != nil {
		start = sort.Search(len(kept), func(i int) bool { return q.before(*q.after, key(kept[i])) })
	}
	end := min(start+q.limit, len(kept))
	out := make([]any, 0, end-start)
	for _, it := range kept[start:end] {
		out = append(out, it.out)
	}
	next := ""
	if end < len(kept) {
		next = encodePageToken(key(kept[end-1]))
	}
	return out, next, nil
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(b, &t)
	return t, err
}

// listOf is one List operation: a kind of record, how to read its
// records, and how each is summarised. Its op decodes the request, pages
// the records, and answers with wrap's response.
type listOf[T any] struct {
	kind string // kiln.KindModels, ...
	// request is the operation's request, which refuses members the
	// operation does not take.
	request func() filtered
	// sortKeys are the SortBy values it takes; the first is the default.
	sortKeys []string
	// named reads the records of some names (kiln.Lister.ModelsNamed, ...),
	// all every record (kiln.Service.ListModels, ...).
	named func(kiln.Lister, context.Context, []string) ([]T, error)
	all   func(kiln.Service, context.Context) ([]T, error)
	item  func(sm *API, v T) listItem
	wrap  func(items []any, next string) any
}

// filtered is a List* request: it holds a listFilter.
type filtered interface{ filter() listFilter }

func (f listFilter) filter() listFilter { return f }

func (k listOf[T]) op(sm *API, ctx context.Context, body []byte) (any, error) {
	in := k.request()
	if err := decodeAWSJSON(body, in); err != nil {
		return nil, err
	}
	q, err := in.filter().parse(k.sortKeys)
	if err != nil {
		return nil, err
	}
	items := func(records []T) []listItem {
		items := make([]listItem, 0, len(records))
		for _, v := range records {
			items = append(items, k.item(sm, v))
		}
		return items
	}
	var out []any
	var next string
	if l := api.ListerOf(sm.Service); q.byNames() {
		out, next, err = pageNames(ctx, l, k.kind, q, func(names []string) ([]listItem, error) {
			records, err := k.named(l, ctx, names)
			return items(records), err
		})
	} else {
		var records []T
		if records, err = k.all(sm.Service, ctx); err == nil {
			out, next, err = page(items(records), q)
		}
	}
	if err != nil {
		return nil, err
	}
	return k.wrap(out, next), nil
}

type modelSummary struct {
	ModelName    string     `json:"ModelName"`
	ModelArn     string     `json:"ModelArn"`
	CreationTime *epochTime `json:"CreationTime"`
}

type listModelsResponse struct {
	Models    []any  `json:"Models"`
	NextToken string `json:"NextToken,omitempty"`
}

var listModels = listOf[kiln.Model]{
	kind:     kiln.KindModels,
	request:  func() filtered { return new(listRequest) },
	sortKeys: []string{"CreationTime", "Name"},
	named:    kiln.Lister.ModelsNamed,
	all:      kiln.Service.ListModels,
	item: func(sm *API, m kiln.Model) listItem {
		return listItem{name: m.ModelName, created: m.CreationTime, out: modelSummary{
			ModelName: m.ModelName, ModelArn: sm.arn("model", m.ModelName, m.ModelArn), CreationTime: epochOrZero(m.CreationTime),
		}}
	},
	wrap: func(items []any, next string) any { return listModelsResponse{Models: items, NextToken: next} },
}

type endpointConfigSummary struct {
	EndpointConfigName string     `json:"EndpointConfigName"`
	EndpointConfigArn  string     `json:"EndpointConfigArn"`
	CreationTime       *epochTime `json:"CreationTime"`
}

type listEndpointConfigsResponse struct {
	EndpointConfigs []any  `json:"EndpointConfigs"`
	NextToken       string `json:"NextToken,omitempty"`
}

var listEndpointConfigs = listOf[kiln.EndpointConfig]{
	kind:     kiln.KindEndpointConfigs,
	request:  func() filtered { return new(listRequest) },
	sortKeys: []string{"CreationTime", "Name"},
	named:    kiln.Lister.EndpointConfigsNamed,
	all:      kiln.Service.ListEndpointConfigs,
	item: func(sm *API, c kiln.EndpointConfig) listItem {
		return listItem{name: c.EndpointConfigName, created: c.CreationTime, out: endpointConfigSummary{
			EndpointConfigName: c.EndpointConfigName,
			EndpointConfigArn:  sm.arn("endpoint-config", c.EndpointConfigName, c.EndpointConfigArn),
			CreationTime:       epochOrZero(c.CreationTime),
		}}
	},
	wrap: func(items []any, next string) any {
		return listEndpointConfigsResponse{EndpointConfigs: items, NextToken: next}
	},
}

type endpointSummary struct {
	EndpointName     string     `json:"EndpointName"`
	EndpointArn      string     `json:"EndpointArn"`
	CreationTime     *epochTime `json:"CreationTime"`
	LastModifiedTime *epochTime `json:"LastModifiedTime"`
	EndpointStatus   string     `json:"EndpointStatus"`
}

type listEndpointsResponse struct {
	Endpoints []any  `json:"Endpoints"`
	NextToken string `json:"NextToken,omitempty"`
}

var listEndpoints = listOf[kiln.Endpoint]{
	kind:     kiln.KindEndpoints,
	request:  func() filtered { return new(listFilter) },
	sortKeys: []string{"CreationTime", "Name", "Status"},
	named:    kiln.Lister.EndpointsNamed,
	all:      kiln.Service.ListEndpoints,
	item: func(sm *API, ep kiln.Endpoint) listItem {
		return listItem{name: ep.EndpointName, created: ep.CreationTime, updated: ep.LastModifiedTime, status: ep.EndpointStatus,
			out: endpointSummary{
				EndpointName:     ep.EndpointName,
				EndpointArn:      sm.arn("endpoint", ep.EndpointName, ep.EndpointArn),
				CreationTime:     epochOrZero(ep.CreationTime),
				LastModifiedTime: epochOrZero(ep.LastModifiedTime),
				EndpointStatus:   ep.EndpointStatus,
			}}
	},
	wrap: func(items []any, next string) any { return listEndpointsResponse{Endpoints: items, NextToken: next} },
}
