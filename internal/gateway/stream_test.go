package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/kiln-serve/kiln/internal/awstest"
)

// TestInvokeEndpointWithResponseStream drives the response-stream operation
// with the AWS SDK: the model's answer arrives in PayloadPart events as the
// model sends it, with the model's Accept and Content-Type under their
// X-Amzn-SageMaker names, and a stream that breaks off ends in a
// ModelStreamError event.
func TestInvokeEndpointWithResponseStream(t *testing.T) {
	release := make(chan struct{})
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(hCustomAttributes) == "fail" {
			http.Error(w, "bad input", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set(hCustomAttributes, "seen="+r.Header.Get(hCustomAttributes))
		fmt.Fprintf(w, "data: accept=%s type=%s\n\n", r.Header.Get("Accept"), r.Header.Get("Content-Type"))
		w.(http.Flusher).Flush()
		if r.Header.Get(hCustomAttributes) == "wait" {
			<-release
		}
		fmt.Fprint(w, "data: two\n\n")
		w.(http.Flusher).Flush()
		if r.Header.Get(hCustomAttributes) == "break" {
			panic(http.ErrAbortHandler)
		}
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	// Runs before the servers close, so that a failed test does not hang
	// on a model still waiting.
	var once sync.Once
	releaseModel := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseModel)
	sdkClient := &http.Client{Transport: awstest.Transport(&http.Transport{})}
	t.Cleanup(sdkClient.CloseIdleConnections)
	rt := sagemakerruntime.New(sagemakerruntime.Options{BaseEndpoint: aws.String(f.srv.URL), Region: "us-east-1",
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1,
		HTTPClient: sdkClient})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	invoke := func(attrs string) (*sagemakerruntime.InvokeEndpointWithResponseStreamOutput, error) {
		return rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
			EndpointName: aws.String("ep"), Body: []byte(`{"x": 1}`), ContentType: aws.String("application/json"),
			Accept: aws.String("text/event-stream"), CustomAttributes: aws.String(attrs)})
	}
	next := func(s *sagemakerruntime.InvokeEndpointWithResponseStreamEventStream) (string, bool) {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return "", false
			}
			part, isPart := ev.(*rttypes.ResponseStreamMemberPayloadPart)
			if !isPart {
				t.Fatalf("event %T, want a PayloadPart", ev)
			}
			return string(part.Value.Bytes), true
		case <-ctx.Done():
			t.Fatal("no event in time")
			return "", false
		}
	}

	// The first part arrives while the model is still working.
	out, err := invoke("wait")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ContentType) != "text/event-stream" || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" ||
		aws.ToString(out.CustomAttributes) != "seen=wait" {
		t.Errorf("output %q %q %q", aws.ToString(out.ContentType), aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
	}
	s := out.GetStream()
	if got, _ := next(s); got != "data: accept=text/event-stream type=application/json\n\n" {
		t.Errorf("first part %q", got)
	}
	releaseModel()
	var rest strings.Builder
	for {
		part, ok := next(s)
		if !ok {
			break
		}
		rest.WriteString(part)
	}
	if rest.String() != "data: two\n\n" || s.Err() != nil {
		t.Errorf("rest %q, err %v", rest.String(), s.Err())
	}
	s.Close()

	// A model that breaks off: the parts it sent, then ModelStreamError.
	out, err = invoke("break")
	if err != nil {
		t.Fatal(err)
	}
	s = out.GetStream()
	for {
		if _, ok := next(s); !ok {
			break
		}
	}
	var mse *rttypes.ModelStreamError
	if !errors.As(s.Err(), &mse) || aws.ToString(mse.ErrorCode_) != "StreamBroken" {
		t.Errorf("broken stream ends with %v, want a ModelStreamError StreamBroken", s.Err())
	}
	s.Close()

	// A model that refuses before streaming: ModelError, as InvokeEndpoint.
	var me *rttypes.ModelError
	if _, err := invoke("fail"); !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 400 {
		t.Errorf("failing model: %v, want ModelError with status 400", err)
	}
	if _, err := rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("nope"), Body: []byte(`{}`)}); !errors.As(err, new(*rttypes.ValidationError)) {
		t.Errorf("unknown endpoint: %v, want ValidationError", err)
	}
}
