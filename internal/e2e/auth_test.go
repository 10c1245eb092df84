package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// roleKeys are the keys of writeRoleCredentials, one per role.
var roleKeys = map[string]string{
	"admin":  "admin-secret-0123456789",
	"deploy": "deploy-secret-0123456789",
	"read":   "read-secret-0123456789ab",
	"invoke": "invoke-secret-0123456789",
}

func roleKeyID(role string) string { return "KILN" + strings.ToUpper(role) }

// writeRoleCredentials writes a credentials file with one key per role;
// the admin's profile names no role, as files written before roles.
func writeRoleCredentials(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, role := range []string{"admin", "deploy", "read", "invoke"} {
		fmt.Fprintf(&b, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", role, roleKeyID(role), roleKeys[role])
		if role != "admin" {
			fmt.Fprintf(&b, "kiln_role = %s\nregion = us-east-1\n", role)
		}
	}
	p := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func httpStatusOf(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Each key has a role, enforced on every API: SageMaker and CloudWatch
// through the AWS SDK (AccessDeniedException as AWS answers it), the
// native API through the CLI, invocations under --invoke-auth, /metrics
// and the dashboard's actions.
func TestAuthRoles(t *testing.T) {
	p := startKiln(t, "", "--credentials-file", writeRoleCredentials(t), "--invoke-auth")
	ctx := context.Background()
	sm := map[string]*sagemaker.Client{}
	rt := map[string]*sagemakerruntime.Client{}
	for role, secret := range roleKeys {
		sm[role], rt[role] = smClients(p.url, roleKeyID(role), secret)
	}
	denied := func(what string, err error, status int) {
		t.Helper()
		if awsErrorCode(err) != "AccessDeniedException" || httpStatusOf(err) != status {
			t.Errorf("%s: %v (HTTP %d), want AccessDeniedException with %d", what, err, httpStatusOf(err), status)
		}
	}

	// Models run commands on the host: admin only.
	model := &sagemaker.CreateModelInput{ModelName: aws.String("roles-m"), PrimaryContainer: &types.ContainerDefinition{Image: aws.String(kilnBin + " demo-model")}}
	_, err := sm["deploy"].CreateModel(ctx, model)
	denied("deploy's CreateModel", err, 400)
	_, err = sm["read"].CreateModel(ctx, model)
	denied("read's CreateModel", err, 400)
	must[*sagemaker.CreateModelOutput](t, "admin's CreateModel")(sm["admin"].CreateModel(ctx, model))
	_, err = sm["deploy"].DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("roles-m")})
	denied("deploy's DeleteModel", err, 400)

	// Endpoints are deploy's.
	cfg := &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("roles-c"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("roles-m"), InitialInstanceCount: aws.Int32(1)}}}
	_, err = sm["read"].CreateEndpointConfig(ctx, cfg)
	denied("read's CreateEndpointConfig", err, 400)
	must[*sagemaker.CreateEndpointConfigOutput](t, "deploy's CreateEndpointConfig")(sm["deploy"].CreateEndpointConfig(ctx, cfg))
	_, err = sm["invoke"].CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("roles"), EndpointConfigName: aws.String("roles-c")})
	denied("invoke's CreateEndpoint", err, 400)
	must[*sagemaker.CreateEndpointOutput](t, "deploy's CreateEndpoint")(sm["deploy"].CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("roles"), EndpointConfigName: aws.String("roles-c")}))

	// Reads are read's, and not invoke's.
	waitInServiceSDK(t, sm["read"], "roles", 60*time.Second)
	_, err = sm["invoke"].DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("roles")})
	denied("invoke's DescribeEndpoint", err, 400)
	_, err = sm["read"].DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("roles")})
	denied("read's DeleteEndpoint", err, 400)

	// Invocations are invoke's and deploy's, not read's.
	invokeIn := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("roles"), Body: []byte(body), ContentType: aws.String("application/json")}
	for _, role := range []string{"invoke", "deploy", "admin"} {
		if _, err := rt[role].InvokeEndpoint(ctx, invokeIn); err != nil {
			t.Errorf("%s's InvokeEndpoint: %v", role, err)
		}
	}
	_, err = rt["read"].InvokeEndpoint(ctx, invokeIn)
	denied("read's InvokeEndpoint", err, 403)

	// CloudWatch: AccessDenied, 403, in its CBOR protocol through the SDK,
	// and in the query protocol's XML.
	cw := func(role string) *cloudwatch.Client {
		return cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(roleKeyID(role), roleKeys[role], "")})
	}
	alarm := &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("roles-5xx"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation5XXErrors"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(10), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		Dimensions:         []cwtypes.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("roles")}, {Name: aws.String("VariantName"), Value: aws.String("AllTraffic")}}}
	if _, err := cw("read").PutMetricAlarm(ctx, alarm); apiCode(err) != "AccessDenied" || httpStatusOf(err) != 403 {
		t.Errorf("read's PutMetricAlarm: %v (HTTP %d), want AccessDenied with 403", err, httpStatusOf(err))
	}
	if _, err := cw("deploy").PutMetricAlarm(ctx, alarm); err != nil {
		t.Errorf("deploy's PutMetricAlarm: %v", err)
	}
	if out, err := cw("read").DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); err != nil || len(out.MetricAlarms) != 1 {
		t.Errorf("read's DescribeAlarms: %v", err)
	}
	if _, err := cw("invoke").DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}); apiCode(err) != "AccessDenied" {
		t.Errorf("invoke's DescribeAlarms: %v, want AccessDenied", err)
	}
	form := "Action=SetAlarmState&Version=2010-08-01&AlarmName=roles-5xx&StateValue=ALARM&StateReason=test"
	req, _ := http.NewRequest("POST", p.url+"/", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(form))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: roleKeyID("read"), SecretAccessKey: roleKeys["read"]}, req, hex.EncodeToString(sum[:]), "monitoring", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "<Code>AccessDenied</Code>") {
		t.Errorf("read's SetAlarmState (query protocol): %d %s, want 403 AccessDenied", resp.StatusCode, b)
	}

	// The native API through the CLI, signing with each key.
	as := func(role string, args ...string) (string, error) {
		return p.cli(append(args, "--access-key-id", roleKeyID(role), "--secret-access-key", roleKeys[role])...)
	}
	if out, err := as("read", "get", "endpoints"); err != nil || !strings.Contains(out, "roles") {
		t.Errorf("read's kiln get endpoints: %q %v", out, err)
	}
	if _, err := as("read", "rollback", "roles"); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("read's kiln rollback: %v, want not authorized", err)
	}
	if _, err := as("deploy", "delete", "model", "roles-m"); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("deploy's kiln delete model: %v, want not authorized", err)
	}
	if _, err := as("invoke", "get", "endpoints"); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("invoke's kiln get endpoints: %v, want not authorized", err)
	}
	if out, err := as("invoke", "invoke", "roles", "--body", body); err != nil || !strings.Contains(out, "model_version") {
		t.Errorf("invoke's kiln invoke: %q %v", out, err)
	}
	// A token has its key's role or a narrower one, never a wider.
	if _, err := as("read", "token", "--role", "deploy"); err == nil || !strings.Contains(err.Error(), "cannot have a token of role deploy") {
		t.Errorf("read's token of role deploy: %v, want refused", err)
	}
	readTok, err := as("deploy", "token", "--role", "read", "--ttl", "10m")
	if err != nil {
		t.Fatal(err)
	}
	readTok = strings.TrimSpace(readTok)
	if _, err := p.cli("rollback", "roles", "--token", readTok); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("rollback with a read token of a deploy key: %v, want not authorized", err)
	}
	// A token cannot mint another (it would outlive its expiry).
	if _, err := p.cli("token", "--token", readTok); err == nil {
		t.Error("kiln token with only a token: succeeded, want refused")
	}

	// /metrics: read.
	metrics := func(authz string) int {
		req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	invokeTok, err := as("invoke", "token")
	if err != nil {
		t.Fatal(err)
	}
	if got := metrics(""); got != 401 {
		t.Errorf("/metrics without credentials: %d, want 401", got)
	}
	if got := metrics("Bearer " + strings.TrimSpace(invokeTok)); got != 403 {
		t.Errorf("/metrics with an invoke token: %d, want 403", got)
	}
	if got := metrics("Bearer " + readTok); got != 200 {
		t.Errorf("/metrics with a read token: %d, want 200", got)
	}

	// The dashboard: a read key views, and its session cannot roll back.
	session := dashboardLogin(t, p.url, url.Values{"access_key_id": {roleKeyID("read")}, "secret_access_key": {roleKeys["read"]}})
	for _, tc := range []struct {
		method, path string
		want         int
	}{{"GET", "/v1/endpoints/roles", 200}, {"POST", "/v1/endpoints/roles/rollback", 403}, {"POST", "/v1/endpoints/roles/stop", 403}} {
		req, _ := http.NewRequest(tc.method, p.url+tc.path, nil)
		req.AddCookie(session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with a read session: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	// An invoke key cannot even sign in to the dashboard.
	form2 := url.Values{"access_key_id": {roleKeyID("invoke")}, "secret_access_key": {roleKeys["invoke"]}}
	if resp := postLogin(t, p.url, form2); resp.StatusCode != 401 {
		t.Errorf("an invoke key's dashboard sign-in: %d, want 401", resp.StatusCode)
	}
}

func postLogin(t *testing.T, base string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// dashboardLogin signs in as the dashboard's form does and returns the
// session cookie.
func dashboardLogin(t *testing.T, base string, form url.Values) *http.Cookie {
	t.Helper()
	resp := postLogin(t, base, form)
	for _, c := range resp.Cookies() {
		if c.Name == "kiln_session" {
			return c
		}
	}
	t.Fatalf("sign-in: %d without a session cookie", resp.StatusCode)
	return nil
}

// Failed authentications are limited per client address: after 20, the
// next request gets 429 (ThrottlingException for the AWS APIs) before its
// credentials are looked at, even good ones; other clients are not
// affected (the test's clients all share 127.0.0.1, so only the refusal is
// checked here; the refill runs on the injected clock in the api package's
// TestFailureLimiter).
func TestAuthFailuresLimited(t *testing.T) {
	p := startKiln(t, "", "--credentials-file", writeRoleCredentials(t), "--open-metrics")
	ctx := context.Background()
	// --open-metrics: /metrics needs nothing.
	if resp, err := http.Get(p.url + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics with --open-metrics: %v %v, want 200", resp, err)
	}
	bad, _ := smClients(p.url, roleKeyID("admin"), "not-the-admin-secret-at-all")
	for i := 0; i < 20; i++ {
		if _, err := bad.ListModels(ctx, &sagemaker.ListModelsInput{}); awsErrorCode(err) != "InvalidSignatureException" {
			t.Fatalf("failure %d: %v, want InvalidSignatureException", i+1, err)
		}
	}
	good, _ := smClients(p.url, roleKeyID("admin"), roleKeys["admin"])
	if _, err := good.ListModels(ctx, &sagemaker.ListModelsInput{}); awsErrorCode(err) != "ThrottlingException" || httpStatusOf(err) != 429 {
		t.Errorf("after 20 failures: %v (HTTP %d), want ThrottlingException 429", err, httpStatusOf(err))
	}
	resp, err := http.Get(p.url + "/v1/endpoints")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"throttled"`) {
		t.Errorf("native API after 20 failures: %d %v %s, want 429 with Retry-After", resp.StatusCode, resp.Header, b)
	}
	if resp := postLogin(t, p.url, url.Values{"access_key_id": {roleKeyID("admin")}, "secret_access_key": {roleKeys["admin"]}}); resp.StatusCode != 429 {
		t.Errorf("dashboard sign-in after 20 failures: %d, want 429", resp.StatusCode)
	}
}

// A refused request's body is not read: the answer comes before the body
// is sent, with Connection: close, and the server closes the connection
// rather than read on. net/http, left to itself, reads up to 256 KiB of a
// body the handler left (all of a chunked one, or one of a smaller
// Content-Length) before it sends the answer, so a client that sends its
// 100 MB slowly held the refusal back. Checked for a bad token on the
// native API, an unknown key on the AWS API, a bad signature over a signed
// payload hash (checked before the body is read), and an invocation under
// --invoke-auth.
func TestAuthRefusedBodyNotRead(t *testing.T) {
	p := startKiln(t, "", "--credentials-file", writeRoleCredentials(t), "--invoke-auth")
	// A request signed with a wrong secret over a claimed payload hash.
	signed := func(path string) string {
		req, _ := http.NewRequest("POST", p.url+path, nil)
		req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		hash := strings.Repeat("ab", 32)
		req.Header.Set("X-Amz-Content-Sha256", hash)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: roleKeyID("admin"), SecretAccessKey: "a-wrong-secret-0123456789"}, req, hash, "sagemaker", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		var h strings.Builder
		for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Target", "Content-Type"} {
			fmt.Fprintf(&h, "%s: %s\r\n", k, req.Header.Get(k))
		}
		return h.String()
	}
	type refusal struct {
		name, path, header string
		status             int
	}
	for _, tc := range []refusal{
		{"native, bad token", "/v1/models", "Authorization: Bearer kiln1.KILNADMIN.admin.99999999999.forged\r\nContent-Type: application/json\r\n", 401},
		{"native, the secret as token", "/v1/models", "Authorization: Bearer " + roleKeys["admin"] + "\r\nContent-Type: application/json\r\n", 401},
		{"AWS API, unknown key", "/", "X-Amz-Target: SageMaker.CreateModel\r\nContent-Type: application/x-amz-json-1.1\r\n" +
			"X-Amz-Date: " + time.Now().UTC().Format("20060102T150405Z") + "\r\n" +
			"Authorization: AWS4-HMAC-SHA256 Credential=NOBODY/" + time.Now().UTC().Format("20060102") + "/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\n", 403},
		{"AWS API, bad signature over a signed hash", "/", signed("/"), 403},
		{"invocation, no credentials", "/endpoints/none/invocations", "Content-Type: application/json\r\n", 403},
	} {
		for _, framing := range []string{"chunked", "200 KB"} {
			t.Run(tc.name+", "+framing, func(t *testing.T) { refusedBodyNotRead(t, p.addr, tc.path, tc.header, framing, tc.status) })
		}
	}
}

func refusedBodyNotRead(t *testing.T, addr, path, header, framing string, status int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// A first kilobyte of the body, and nothing more until the answer
	// has come.
	if framing == "chunked" {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n400\r\n%s\r\n", path, addr, header, strings.Repeat("x", 1024))
	} else {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s", path, addr, header, 200_000, strings.Repeat("x", 1024))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body waits: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || !resp.Close {
		t.Errorf("answer %d (Connection: close %v) %s, want %d with Connection: close", resp.StatusCode, resp.Close, b, status)
	}
	// The server closes the connection instead of reading on.
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Errorf("after the answer: %d more bytes, %v; want the connection closed", n, err)
	}
}

// testCert writes a self-signed certificate for 127.0.0.1 and localhost,
// and returns the paths of the certificate and key and a pool trusting it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiln test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// kiln serve --tls-cert --tls-key serves every API over HTTPS: the CLI
// with --ca-cert, the AWS SDK, invocations over HTTP/1.1 (several on one
// connection, which the gateway serves itself after the first) and over
// HTTP/2.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	p := startKilnWith(t, "", kilnOpts{https: true, httpClient: &http.Client{Transport: tr}},
		"--tls-cert", certFile, "--tls-key", keyFile, "--credentials-file", writeRoleCredentials(t), "--invoke-auth")
	p.client.AccessKeyID, p.client.SecretAccessKey = roleKeyID("admin"), roleKeys["admin"]
	ctx := context.Background()

	admin := []string{"--access-key-id", roleKeyID("admin"), "--secret-access-key", roleKeys["admin"]}
	if _, err := p.cli(append([]string{"get", "endpoints"}, admin...)...); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the CLI without --ca-cert: %v, want a certificate error", err)
	}
	p.mustCLI(append([]string{"apply", "-f", writeTemp(t, demoYAML("tls", 1)), "--ca-cert", certFile}, admin...)...)
	p.waitInService("tls", 60*time.Second)

	// The SDK over TLS.
	hc := &http.Client{Transport: tr}
	creds := credentials.NewStaticCredentialsProvider(roleKeyID("invoke"), roleKeys["invoke"], "")
	smc := sagemaker.New(sagemaker.Options{BaseEndpoint: aws.String(p.url), Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(roleKeyID("read"), roleKeys["read"], ""), HTTPClient: hc, RetryMaxAttempts: 1})
	if out, err := smc.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("tls")}); err != nil || out.EndpointStatus != types.EndpointStatusInService {
		t.Errorf("DescribeEndpoint over TLS: %v", err)
	}

	// Invocations over HTTP/1.1, five on one connection, and over HTTP/2.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}, MaxConnsPerHost: 1}}
	h2 := &http.Client{Transport: tr}
	for name, c := range map[string]*http.Client{"HTTP/1.1": h1, "HTTP/2": h2} {
		rtc := sagemakerruntime.New(sagemakerruntime.Options{BaseEndpoint: aws.String(p.url), Region: "us-east-1", Credentials: creds, HTTPClient: c, RetryMaxAttempts: 1})
		for i := 0; i < 5; i++ {
			out, err := rtc.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("tls"), Body: []byte(body), ContentType: aws.String("application/json")})
			if err != nil || !strings.Contains(string(out.Body), "model_version") {
				t.Errorf("%s invocation %d over TLS: %v", name, i+1, err)
			}
		}
	}
	resp, err := h2.Get(p.url + "/healthz")
	if err != nil || resp.ProtoMajor != 2 {
		t.Errorf("HTTP/2 over TLS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A token over curl-like HTTP/1.1 through the gateway's own path.
	tok := strings.TrimSpace(p.mustCLI(append([]string{"token", "--ca-cert", certFile}, admin...)...))
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", p.url+"/endpoints/tls/invocations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		if i == 1 {
			req.Header.Set("Authorization", "Bearer not-a-token")
		}
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := map[bool]int{true: 403, false: 200}[i == 1]; resp.StatusCode != want {
			t.Errorf("HTTP/1.1 invocation %d with a token over TLS: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// With credentials, plain HTTP beyond loopback is refused unless
// --insecure-http says a TLS-terminating proxy is in front.
func TestServePlainHTTPBeyondLoopback(t *testing.T) {
	creds := writeRoleCredentials(t)
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	cmd := exec.Command(kilnBin, "serve", "--addr", "0.0.0.0:"+port, "--data-dir", t.TempDir(), "--credentials-file", creds)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to serve plain HTTP") || !strings.Contains(string(out), "--tls-cert") {
		t.Errorf("kiln serve on 0.0.0.0 with credentials and no TLS: %v\n%s", err, out)
	}
	cmd = exec.Command(kilnBin, "serve", "--addr", "0.0.0.0:"+port, "--data-dir", t.TempDir(), "--credentials-file", creds, "--insecure-http")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitFor(t, 20*time.Second, "kiln with --insecure-http on 0.0.0.0", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
