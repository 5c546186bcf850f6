// Package kube writes a sharded quantscope study as a Kubernetes batch/v1
// Job in Indexed completion mode: one pod per shard, each with its GPU, its
// part of the study from JOB_COMPLETION_INDEX, and its results file on a
// shared volume. The manifests are k8s.io/api objects serialised with
// sigs.k8s.io/yaml, so they are what the API server's own types say, not
// text that happens to look like it.
package kube

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/quantscope/quantscope/deploy"
)

// Options are the cluster side of the Job.
type Options struct {
	// Image is the container image (the repository's Dockerfile builds
	// one): quantscope on the PATH, ONNX Runtime and the CUDA plugin.
	Image string
	// Namespace of the Job and the claim ("" for kubectl's current one).
	Namespace string
	// GPUs per pod (nvidia.com/gpu limit); 0 runs on CPU nodes.
	GPUs int
	// NodeSelector picks the nodes (e.g. nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3).
	NodeSelector map[string]string
	// ResultsPVC is an existing PersistentVolumeClaim for the results;
	// "" writes a ReadWriteMany claim NAME-results of ResultsSize (in
	// StorageClass, "" for the cluster's default) beside the Job.
	ResultsPVC, ResultsSize, StorageClass string
	// ModelsPVC, when set, is mounted read-only at ModelsDir for .onnx
	// models the image does not hold.
	ModelsPVC string
	// Parallelism bounds the pods running at once (0: every shard).
	Parallelism int
	// Retries is how often one shard's pod is replaced after failing
	// (backoffLimitPerIndex); a failing shard never stops the others.
	Retries int
	// CPU and Memory are each pod's requests (Memory is its limit too);
	// "" leaves them unset.
	CPU, Memory string
}

// Paths inside the pods.
const (
	ResultsDir = "/results"
	ModelsDir  = "/models"
	CacheDir   = "/cache"
	// ContainerName is the bench container's name.
	ContainerName = "bench"
	// RunAsUser is the image's quantscope user; the pod runs as it, and
	// fsGroup makes the results volume writable for it.
	RunAsUser = 1000
)

// GPUResource is the extended resource the NVIDIA device plugin serves.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// ExitUsage is quantscope's exit status for bad flags: retrying such a pod
// cannot help, so its shard fails at once.
const ExitUsage = 2

// Manifests builds the Job and, without Options.ResultsPVC, the claim it
// writes into (nil otherwise).
func Manifests(s deploy.Study, o Options) (*batchv1.Job, *corev1.PersistentVolumeClaim, error) {
	if err := validate(s, o); err != nil {
		return nil, nil, err
	}
	labels := map[string]string{
		"app.kubernetes.io/name":      "quantscope",
		"app.kubernetes.io/component": "bench",
		"app.kubernetes.io/instance":  s.Name,
	}
	var pvc *corev1.PersistentVolumeClaim
	claim := o.ResultsPVC
	if claim == "" {
		claim = s.Name + "-results"
		size := o.ResultsSize
		if size == "" {
			size = "1Gi"
		}
		pvc = &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: o.Namespace, Labels: maps.Clone(labels)},
			Spec: corev1.PersistentVolumeClaimSpec{
				// Pods of one Job land on different nodes.
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
				},
			},
		}
		if o.StorageClass != "" {
			pvc.Spec.StorageClassName = &o.StorageClass
		}
	}

	shards := int32(s.Shards)
	parallelism := shards
	if o.Parallelism > 0 && int32(o.Parallelism) < shards {
		parallelism = int32(o.Parallelism)
	}
	retries := int32(o.Retries)
	indexed := batchv1.IndexedCompletion
	out := path.Join(ResultsDir, s.Name, deploy.ResultsFile("$(JOB_COMPLETION_INDEX)"))

	c := corev1.Container{
		Name:  ContainerName,
		Image: o.Image,
		// "$@" is quantscope's arguments; see deploy.RunScript.
		Command: []string{"/bin/sh", "-c", deploy.RunScript, deploy.Binary},
		Args:    s.BenchArgs(out),
		Env: []corev1.EnvVar{
			// The Job controller sets this too; declaring it makes the
			// $(JOB_COMPLETION_INDEX) in the arguments expand for certain.
			{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']"}}},
			{Name: "QUANTSCOPE_CACHE_DIR", Value: CacheDir},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "results", MountPath: ResultsDir},
			{Name: "cache", MountPath: CacheDir},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	if o.GPUs > 0 {
		c.Resources.Limits = corev1.ResourceList{GPUResource: *resource.NewQuantity(int64(o.GPUs), resource.DecimalSI)}
	}
	if o.CPU != "" || o.Memory != "" {
		c.Resources.Requests = corev1.ResourceList{}
		if o.CPU != "" {
			c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(o.CPU)
		}
		if o.Memory != "" {
			m := resource.MustParse(o.Memory)
			c.Resources.Requests[corev1.ResourceMemory] = m
			if c.Resources.Limits == nil {
				c.Resources.Limits = corev1.ResourceList{}
			}
			c.Resources.Limits[corev1.ResourceMemory] = m
		}
	}
	volumes := []corev1.Volume{
		{Name: "results", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
		// Built catalog models and quantized variants, per pod.
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if o.ModelsPVC != "" {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "models", MountPath: ModelsDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "models", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.ModelsPVC, ReadOnly: true}}})
	}
	pod := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		NodeSelector:  maps.Clone(o.NodeSelector),
		Containers:    []corev1.Container{c},
		Volumes:       volumes,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(RunAsUser)),
			RunAsGroup:     ptr(int64(RunAsUser)),
			FSGroup:        ptr(int64(RunAsUser)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if o.GPUs > 0 {
		// GPU nodes are commonly tainted so that only GPU pods land there.
		pod.Tolerations = []corev1.Toleration{{Key: string(GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: o.Namespace, Labels: maps.Clone(labels)},
		Spec: batchv1.JobSpec{
			CompletionMode:       &indexed,
			Completions:          &shards,
			Parallelism:          &parallelism,
			BackoffLimitPerIndex: &retries,
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{
					// Bad flags fail the same way on every try.
					Action: batchv1.PodFailurePolicyActionFailIndex,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr(ContainerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{ExitUsage},
					},
				},
				{
					// Preemption, eviction, node drain: not the shard's
					// fault; the replacement resumes its file.
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec:       pod,
			},
		},
	}
	return job, pvc, nil
}

func ptr[T any](v T) *T { return &v }

func validate(s deploy.Study, o Options) error {
	errs := []error{s.Validate()}
	if strings.TrimSpace(o.Image) == "" {
		errs = append(errs, errors.New("no container image: pass --image (build one from the repository's Dockerfile)"))
	}
	name := func(flag, v string, max int) {
		if v == "" {
			return
		}
		if msgs := content.IsDNS1123Label(v); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", flag, v, strings.Join(msgs, "; ")))
		} else if len(v) > max {
			errs = append(errs, fmt.Errorf("%s %q: at most %d characters", flag, v, max))
		}
	}
	// Pod names are NAME-<index>-<5 random>, and label values hold at most
	// 63 characters: the Job name stays short enough for both.
	name("--name", s.Name, 63-len("-results"))
	name("--namespace", o.Namespace, 63)
	name("--results-pvc", o.ResultsPVC, 253)
	name("--models-pvc", o.ModelsPVC, 253)
	for _, k := range slices.Sorted(maps.Keys(o.NodeSelector)) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--node-selector key %q: %s", k, strings.Join(msgs, "; ")))
		}
		if msgs := content.IsLabelValue(o.NodeSelector[k]); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--node-selector %s=%q: %s", k, o.NodeSelector[k], strings.Join(msgs, "; ")))
		}
	}
	if o.GPUs < 0 {
		errs = append(errs, fmt.Errorf("--gpu %d: must be 0 or more", o.GPUs))
	}
	if o.Parallelism < 0 {
		errs = append(errs, fmt.Errorf("--parallelism %d: must be 0 (every shard at once) or more", o.Parallelism))
	}
	if o.Retries < 0 {
		errs = append(errs, fmt.Errorf("--retries %d: must be 0 or more", o.Retries))
	}
	for flag, q := range map[string]string{"--results-size": o.ResultsSize, "--cpu": o.CPU, "--memory": o.Memory} {
		if q == "" {
			continue
		}
		v, err := resource.ParseQuantity(q)
		if err != nil || v.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a positive Kubernetes quantity such as 10Gi or 4", flag, q))
		}
	}
	return errors.Join(errs...)
}

// Render writes the manifests as one YAML stream for kubectl apply -f:
// comments on what the Job does, how to follow it and how to collect its
// files, then the claim (when it creates one) and the Job. preview lines
// (deploy.Preview) go into the comments.
func Render(w io.Writer, s deploy.Study, o Options, preview []string) error {
	job, pvc, err := Manifests(s, o)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	comment(&b, header(s, o, job, preview))
	objs := []any{job}
	if pvc != nil {
		objs = []any{pvc, job}
	}
	for _, obj := range objs {
		y, err := manifestYAML(obj)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// manifestYAML serialises an API object without the fields only the server
// fills in (status, a null creationTimestamp).
func manifestYAML(obj any) ([]byte, error) {
	j, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("serialise manifest: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("serialise manifest: %w", err)
	}
	delete(m, "status")
	dropNullTimestamps(m)
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("serialise manifest: %w", err)
	}
	return y, nil
}

func dropNullTimestamps(v any) {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["creationTimestamp"]; ok && t == nil {
			delete(x, "creationTimestamp")
		}
		for _, c := range x {
			dropNullTimestamps(c)
		}
	case []any:
		for _, c := range x {
			dropNullTimestamps(c)
		}
	}
}

func comment(b *bytes.Buffer, lines []string) {
	for _, l := range lines {
		if l == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + l + "\n")
	}
}

func header(s deploy.Study, o Options, job *batchv1.Job, preview []string) []string {
	ns := ""
	if o.Namespace != "" {
		ns = " -n " + o.Namespace
	}
	claim := o.ResultsPVC
	if claim == "" {
		claim = s.Name + "-results"
	}
	gpu := "no GPU (CPU nodes)"
	if o.GPUs > 0 {
		gpu = fmt.Sprintf("%d × %s", o.GPUs, GPUResource)
	}
	lines := []string{
		"Written by `quantscope deploy k8s`; save it as job.yaml.",
		fmt.Sprintf("quantscope study %q: %d shards as a Kubernetes Indexed Job, one pod per shard (%s each).", s.Name, s.Shards, gpu),
		fmt.Sprintf("Pod i runs `quantscope bench --shard auto --shards %d`, which takes shard i from JOB_COMPLETION_INDEX,", s.Shards),
		fmt.Sprintf("and writes %s on the claim %s.", path.Join(ResultsDir, s.Name, deploy.ResultsFile("<i>")), claim),
		"A model's FP32 baseline runs in the same pod as its variants; a shard whose experiments failed",
		"still completes (their records say why); a preempted or crashed pod is replaced and resumes its file.",
		"Needs Kubernetes 1.29 or newer (backoffLimitPerIndex) and, for GPUs, the NVIDIA device plugin.",
	}
	if len(preview) > 0 {
		lines = append(lines, "", "Expected split (GFLOPs × batch; every pod computes the same):")
		for _, p := range preview {
			lines = append(lines, "  "+p)
		}
	}
	lines = append(lines, "",
		"Run and follow:",
		fmt.Sprintf("  kubectl apply%s -f job.yaml", ns),
		fmt.Sprintf("  kubectl get pods%s -l batch.kubernetes.io/job-name=%s", ns, job.Name),
		fmt.Sprintf("  kubectl wait%s --for=condition=complete --timeout=24h job/%s", ns, job.Name),
		"",
		"Collect the results (a pod that mounts the claim, then kubectl cp):",
		fmt.Sprintf(`  kubectl run%s %s-collect --image=busybox --restart=Never \`, ns, s.Name),
		fmt.Sprintf(`    --overrides='{"spec":{"securityContext":{"runAsUser":%d},"containers":[{"name":"c","image":"busybox","command":["sleep","3600"],"volumeMounts":[{"name":"r","mountPath":"%s"}]}],"volumes":[{"name":"r","persistentVolumeClaim":{"claimName":"%s"}}]}}'`, RunAsUser, ResultsDir, claim),
		fmt.Sprintf("  kubectl wait%s --for=condition=Ready pod/%s-collect", ns, s.Name),
		fmt.Sprintf("  kubectl cp%s %s-collect:%s ./%s", ns, s.Name, path.Join(ResultsDir, s.Name), s.Name),
		fmt.Sprintf("  kubectl delete%s pod/%s-collect", ns, s.Name),
	)
	for _, c := range deploy.CollectSteps(s.Name, s.Name) {
		lines = append(lines, "  "+c)
	}
	if o.ResultsPVC == "" {
		lines = append(lines, "", fmt.Sprintf("The claim %s (ReadWriteMany) is created below; delete it once collected.", claim))
	}
	lines = append(lines, fmt.Sprintf("Pods run as UID %d with fsGroup %d; an NFS-backed claim ignores fsGroup, so make it writable for that UID.", RunAsUser, RunAsUser))
	return lines
}
