// kstatus reads one Kubernetes object as JSON on stdin and prints what
// sigs.k8s.io/cli-utils' kstatus (status.Compute, the rules kpt, Flux and
// `kubectl wait`-style tooling share) makes of it:
//
//	{"status": "InProgress|Failed|Current|Terminating|NotFound|Unknown", "message": "...", "conditions": [...]}
//
// The Celeris tests feed it TradingSystem objects to check that the status
// the operator writes reads the way we mean it to. Exit code 2 on bad input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type result struct {
	Status     string      `json:"status"`
	Message    string      `json:"message"`
	Conditions []condition `json:"conditions"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// apimachinery's decoder keeps whole numbers as int64, as the API server's objects have them
	// (encoding/json would make metadata.generation a float64, which kstatus refuses).
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a JSON object:", err)
		os.Exit(2)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: status.Compute:", err)
		os.Exit(2)
	}
	out := result{Status: res.Status.String(), Message: res.Message, Conditions: []condition{}}
	for _, c := range res.Conditions {
		out.Conditions = append(out.Conditions, condition{
			Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message,
		})
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: writing stdout:", err)
		os.Exit(2)
	}
}
