package config

import (
	"strings"
	"testing"
)

func TestClientConnectionAndServiceProxyNameAreChecked(t *testing.T) {
	in := header + "clientConnection:\n  contentType: text/plain\n  qps: -1\n  burst: -2\nconfigSyncPeriod: -1s\nlbkit:\n  serviceProxyName: \"not a label!\"\n"
	c, _, err := Parse([]byte(in), "bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err = c.Validate(); err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"bad.yaml:4", "clientConnection.contentType", "clientConnection.qps", "clientConnection.burst", "configSyncPeriod", "lbkit.serviceProxyName"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	c, _, err = Parse([]byte(header+"clientConnection:\n  qps: 50.5\n  burst: 100\n"), "ok.yaml")
	if err == nil {
		err = c.Validate()
	}
	if err != nil || c.ClientConnection.QPS != 50.5 || c.ClientConnection.Burst != 100 || c.ClientConnection.ContentType != ContentTypeProtobuf {
		t.Fatalf("%+v, %v", c.ClientConnection, err)
	}
}
