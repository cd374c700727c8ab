/*
 * cmd_bench.c — `ember bench`: throughput on the fixed workloads of
 * bench/workloads (token ids, batches of 32 consecutive sequences, one
 * warm-up batch, best of --reps timed passes), after checking the chosen path
 * against a reference: the fp32 path for --dtype bf16/int8, the portable
 * scalar kernels for fp32. Reports real tokens/s, sequences/s, model FLOP
 * utilisation against a peak it measures, peak RSS and the time per op.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Ops reported per workload; more than any library build has. */
#define MAX_OPS 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool file_exists(const char *path) { return access(path, R_OK) == 0; }

static void help(void) {
    printf("usage: ember bench [-m MODEL] [options]\n"
           "\n"
           "options:\n"
           "  -w, --workload W     short, code, long (bench/workloads/W.txt) or a FILE of token ids;\n"
           "                       repeat for several; default: short, code and long\n"
           "  --dtype D            auto (default: as ember embed; fp32 arithmetic on a CPU, BF16\n"
           "                       checkpoints kept BF16 in memory), f32, bf16 or int8 weights\n"
           "  -t, --threads N      worker threads (default: all CPUs)\n"
           "  -b, --batch-size N   sequences per call (default 32; 512 on a GPU)\n"
           "  --reps N             timed passes, the best is reported (default 3)\n"
           "  --check-seqs N       sequences checked against the reference path (default 8)\n"
           "  --json               one JSON object per workload\n");
}

typedef struct {
    int32_t *ids;
    int64_t *offsets;
    int64_t n, n_tokens;
} workload;

static bool load_workload(const char *path, workload *w) {
    cli_input in;
    memset(w, 0, sizeof *w);
    if (!cli_input_open(&in, INPUT_IDS, path, NULL, 0))
        return false;
    int64_t n = cli_input_next(&in, INT32_MAX, "bench");
    if (n <= 0) {
        cli_input_close(&in);
        return false;
    }
    w->n = n;
    w->n_tokens = in.offsets[n];
    w->ids = malloc(sizeof(int32_t) * (size_t)w->n_tokens);
    w->offsets = malloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(w->ids, in.ids, sizeof(int32_t) * (size_t)w->n_tokens);
    memcpy(w->offsets, in.offsets, sizeof(int64_t) * (size_t)(n + 1));
    cli_input_close(&in);
    return true;
}

/* bench/workloads/NAME.txt next to the build directory, or NAME as a path. */
static char *workload_path(const char *name) {
    if (file_exists(name))
        return strdup(name);
    const char *env = getenv("EMBER_BENCH_DIR");
    char buf[PATH_MAX];
    if (env) {
        int k = snprintf(buf, sizeof buf, "%s/%s.txt", env, name);
        if (k > 0 && (size_t)k < sizeof buf && file_exists(buf))
            return strdup(buf);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"/../bench/workloads", "/../../bench/workloads", "/../share/ember/workloads"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            int k = snprintf(buf, sizeof buf, "%s%s/%s.txt", exe, rel[i], name);
            if (k > 0 && (size_t)k < sizeof buf && file_exists(buf))
                return strdup(buf);
        }
    }
    return NULL;
}

/* Reference vectors of the first n sequences, computed in a child process so
 * the reference model never counts in this process's peak RSS. */
static bool reference_vectors(const char *spec, const char *driver, const workload *w, int64_t n,
                              int dim, float *shared_out) {
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        ember_model_params p = cli_model_params();
        p.driver = driver;
        p.dtype = EMBER_DTYPE_F32;
        ember_model *m = NULL;
        ember_ctx *ctx = NULL;
        int ok = ember_model_load(spec, &p, &m) == EMBER_OK && ember_ctx_init(m, NULL, &ctx) == EMBER_OK &&
                 ember_embed_tokens(ctx, w->ids, w->offsets, n, NULL, shared_out, n * dim, NULL) == EMBER_OK;
        if (!ok)
            fprintf(stderr, "ember bench: reference run failed: %s\n", ember_last_error());
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static const char *dtype_arg_name(ember_dtype d) {
    return d == EMBER_DTYPE_BF16 ? "bf16" : d == EMBER_DTYPE_INT8 ? "int8" : "f32";
}

/* The precision "auto" runs in on the model's driver: bf16 where the driver's
 * default is reduced (a GPU), else fp32. */
static ember_dtype effective_dtype(ember_dtype asked, const ember_model_info *info) {
    if (asked != EMBER_DTYPE_AUTO)
        return asked;
    return info->compute_dtype && strncmp(info->compute_dtype, "bf16", 4) == 0 ? EMBER_DTYPE_BF16
                                                                                 : EMBER_DTYPE_F32;
}

int cmd_bench(int argc, char **argv) {
    cli_args a = {argc, argv, 0, NULL};
    const char *model = NULL, *workloads[16];
    int n_workloads = 0, json = 0, reps = 3, verbose = 0;
    int64_t check_seqs = 8;
    /* auto, as ember embed and serve: an explicit f32 would widen a BF16
     * checkpoint to fp32 (Qwen3-0.6B shapes: 2.3 GB of RSS instead of 1.3) and
     * time a configuration nobody runs by default */
    ember_dtype dtype = cli_dtype; /* --dtype, taken out by main.c */
    ember_ctx_params cp = ember_ctx_default_params();
    cp.max_batch = cp.max_batch_tokens = 0; /* unset: the device's choice, after the load */
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            model = a.value;
        else if (cli_opt_value(&a, "--workload", "-w")) {
            if (n_workloads < 16)
                workloads[n_workloads++] = a.value;
        } else if (cli_opt_value(&a, "--threads", "-t"))
            cp.n_threads = (int32_t)cli_int("--threads", a.value, 1, 1024);
        else if (cli_opt_value(&a, "--batch-size", "-b"))
            cp.max_batch = (int32_t)cli_int("--batch-size", a.value, 1, 65536);
        else if (cli_opt_value(&a, "--max-batch-tokens", NULL))
            cp.max_batch_tokens = (int32_t)cli_int("--max-batch-tokens", a.value, 1, 1 << 24);
        else if (cli_opt_value(&a, "--reps", NULL))
            reps = (int)cli_int("--reps", a.value, 1, 1000);
        else if (cli_opt_value(&a, "--check-seqs", NULL))
            check_seqs = cli_int("--check-seqs", a.value, 0, 1 << 20);
        else if (cli_opt_flag(&a, "--json", NULL))
            json = 1;
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            return 0;
        } else
            cli_die(2, "bench", "unknown option %s (see ember bench --help)", argv[a.i]);
    }
    if (n_workloads == 0) {
        workloads[0] = "short";
        workloads[1] = "code";
        workloads[2] = "long";
        n_workloads = 3;
    }
    cli_setup_logging(verbose);
    const char *spec = cli_model_spec(model);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cp.n_threads > 0 ? cp.n_threads : online > 0 ? (int)online : 1;
    /* the machine's arithmetic peaks (register-only loops, all threads); MFU
     * is against the one of the precision the matrix multiplies run in */
    double peak_f32 = 0, peak_bf16 = 0, peak_int8 = 0, peak_gflops = 0;
    if (ember_cpu_peak_gflops_dtype(threads, EMBER_DTYPE_F32, &peak_f32) != EMBER_OK ||
        ember_cpu_peak_gflops_dtype(threads, EMBER_DTYPE_BF16, &peak_bf16) != EMBER_OK ||
        ember_cpu_peak_gflops_dtype(threads, EMBER_DTYPE_INT8, &peak_int8) != EMBER_OK ||
        peak_f32 <= 0)
        cli_die(1, "bench", "cannot measure the peak: %s", ember_last_error());
    ember_model_params mp = cli_model_params();
    mp.dtype = dtype;
    ember_model *m = cli_load_model(spec, &mp, "bench");
    cli_fill_ctx_params(m, &cp);
    /* a GPU: MFU against its nominal tensor-core peak, not the CPU's */
    double device_peak = 0;
    if (ember_model_peak_gflops(m, &device_peak) != EMBER_OK)
        device_peak = 0;
    ember_ctx *ctx = NULL;
    if (ember_ctx_init(m, &cp, &ctx) != EMBER_OK)
        cli_die(1, "bench", "%s", ember_last_error());
    ember_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ember_model_get_info(m, &info);
    const ember_dtype asked = dtype;
    dtype = effective_dtype(asked, &info);
    int dim = ember_model_dim(m);
    /* where the matmuls run on AMX-BF16 tiles (bf16, and int8 weights
     * dequantized for them), the bf16 peak is the tiles' and int8 is
     * measured against it */
    const int amx_cpu = strstr(ember_cpu_features(), "amx-bf16") != NULL;
    const int amx_gemm = info.kernels && strstr(info.kernels, "AMX-BF16") != NULL;
    peak_gflops = device_peak > 0              ? device_peak
                  : dtype == EMBER_DTYPE_BF16 ? peak_bf16
                  : dtype == EMBER_DTYPE_INT8 ? (amx_gemm ? peak_bf16 : peak_int8)
                                              : peak_f32;
    double peak = peak_gflops * 1e9;
    if (!json)
        printf("model %s (%s, %.1fM parameters), dtype %s%s (compute %s), %d threads, batch %d, kernels: %s\n"
               "measured peaks, %d threads, register-only loops: fp32 FMA %.1f GFLOP/s, "
               "bf16 %s %.1f GFLOP/s, int8 dot %.1f GOP/s; MFU against the %s one\n",
               spec, info.architecture, (double)info.n_parameters / 1e6,
               asked == EMBER_DTYPE_AUTO ? "auto: " : "", dtype_arg_name(dtype), info.compute_dtype,
               threads, cp.max_batch, info.kernels, threads, peak_f32, amx_cpu ? "AMX tiles" : "dot",
               peak_bf16, peak_int8,
               device_peak > 0                       ? "device's"
               : dtype == EMBER_DTYPE_INT8 && amx_gemm ? "bf16 (AMX)"
                                                       : dtype_arg_name(dtype));
    if (!json && device_peak > 0)
        printf("device: nominal peak of its matrix products %.1f TFLOP/s (MFU against it)\n",
               device_peak / 1e3);
    int rc = 0;
    for (int wi = 0; wi < n_workloads; wi++) {
        char *path = workload_path(workloads[wi]);
        workload w;
        if (!path || !load_workload(path, &w)) {
            fprintf(stderr, "ember bench: workload %s not found (bench/workloads/NAME.txt or a file)\n",
                    workloads[wi]);
            free(path);
            rc = 1;
            continue;
        }
        /* 1. check against the reference path */
        int64_t nc = check_seqs < w.n ? check_seqs : w.n;
        double min_cos = 1.0;
        if (nc > 0) {
            size_t bytes = sizeof(float) * (size_t)nc * (size_t)dim;
            float *ref = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            float *got = malloc(bytes);
            const char *ref_driver = dtype == EMBER_DTYPE_F32 ? "cpu-ref" : "cpu";
            if (ref == MAP_FAILED || !reference_vectors(spec, ref_driver, &w, nc, dim, ref) ||
                ember_embed_tokens(ctx, w.ids, w.offsets, nc, NULL, got, nc * dim, NULL) != EMBER_OK) {
                fprintf(stderr, "ember bench: cannot check %s against the reference\n", workloads[wi]);
                rc = 1;
            } else {
                for (int64_t i = 0; i < nc; i++) {
                    double dot = 0, na = 0, nb = 0;
                    for (int d = 0; d < dim; d++) {
                        dot += (double)got[i * dim + d] * ref[i * dim + d];
                        na += (double)got[i * dim + d] * got[i * dim + d];
                        nb += (double)ref[i * dim + d] * ref[i * dim + d];
                    }
                    double c = dot / (sqrt(na * nb) + 1e-30);
                    min_cos = c < min_cos ? c : min_cos;
                }
                double want = dtype == EMBER_DTYPE_F32 ? 0.99999 : 0.999;
                if (min_cos < want) {
                    fprintf(stderr, "ember bench: %s: cosine %.6f against the %s path is below %.5f\n",
                            workloads[wi], min_cos, ref_driver, want);
                    rc = 1;
                }
            }
            if (ref != MAP_FAILED)
                munmap(ref, bytes);
            free(got);
        }
        /* 2. warm up with one batch, then time passes in batches of max_batch */
        int64_t bs = cp.max_batch;
        float *out = malloc(sizeof(float) * (size_t)bs * (size_t)dim);
        int64_t first = bs < w.n ? bs : w.n;
        ember_embed_tokens(ctx, w.ids, w.offsets, first, NULL, out, first * dim, NULL);
        double best = 1e300, prof_dt = 0;
        int32_t n_ops = ember_ctx_profile_count(ctx);
        n_ops = n_ops < MAX_OPS ? n_ops : MAX_OPS;
        ember_op_stats prof_best[MAX_OPS];
        memset(prof_best, 0, sizeof prof_best);
        /* reps timed without the per-op profile (on a GPU every profiled op
         * waits for its own completion), then one more pass with it for the
         * op shares and the FLOP count */
        for (int r = 0; r <= reps; r++) {
            const int profiled = r == reps;
            ember_ctx_enable_profiling(ctx, profiled);
            double t0 = now_s();
            for (int64_t s = 0; s < w.n; s += bs) {
                int64_t n = w.n - s < bs ? w.n - s : bs;
                if (ember_embed_tokens(ctx, w.ids, w.offsets + s, n, NULL, out, n * dim, NULL) != EMBER_OK) {
                    fprintf(stderr, "ember bench: %s\n", ember_last_error());
                    rc = 1;
                    break;
                }
            }
            double dt = now_s() - t0;
            if (!profiled && dt < best)
                best = dt;
            if (profiled) {
                prof_dt = dt;
                for (int32_t k = 0; k < n_ops; k++) {
                    prof_best[k].struct_size = sizeof prof_best[k];
                    ember_ctx_profile_get(ctx, k, &prof_best[k]);
                }
            }
        }
        ember_ctx_enable_profiling(ctx, 0);
        free(out);
        double flops = 0, op_total = 0;
        for (int32_t k = 0; k < n_ops; k++) {
            flops += prof_best[k].flops;
            op_total += prof_best[k].seconds;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss_mb = (double)ru.ru_maxrss / 1024.0;
        double tps = (double)w.n_tokens / best, sps = (double)w.n / best;
        double mfu = flops / best / peak;
        if (json) {
            printf("{\"workload\":\"%s\",\"model\":\"%s\",\"dtype\":\"%s\",\"compute\":\"%s\",\"threads\":%d,\"batch\":%d,"
                   "\"sequences\":%lld,\"tokens\":%lld,\"seconds\":%.6f,\"tokens_per_s\":%.1f,"
                   "\"sequences_per_s\":%.2f,\"gflop\":%.3f,\"gflops\":%.2f,\"peak_gflops\":%.2f,"
                   "\"fma_peak_gflops\":%.2f,\"mfu\":%.4f,\"peak_rss_mb\":%.1f,\"check_cosine_min\":%.7f,\"ops\":{",
                   workloads[wi], spec, dtype_arg_name(dtype), info.compute_dtype, threads, cp.max_batch, (long long)w.n,
                   (long long)w.n_tokens, best, tps, sps, flops / 1e9, flops / best / 1e9, peak / 1e9,
                   peak_f32, mfu, rss_mb, min_cos);
            for (int32_t k = 0; k < n_ops; k++)
                printf("%s\"%s\":{\"seconds\":%.6f,\"calls\":%lld}", k ? "," : "",
                       prof_best[k].name ? prof_best[k].name : "?", prof_best[k].seconds,
                       (long long)prof_best[k].calls);
            printf("}}\n");
        } else {
            printf("\n%s: %lld sequences, %lld tokens, best of %d: %.3f s\n", workloads[wi],
                   (long long)w.n, (long long)w.n_tokens, reps, best);
            printf("  %.0f tokens/s, %.1f sequences/s, %.1f GFLOP/s = %.1f%% MFU, peak RSS %.0f MB, "
                   "check: min cosine %.7f vs %s\n",
                   tps, sps, flops / best / 1e9, 100.0 * mfu, rss_mb, min_cos,
                   dtype == EMBER_DTYPE_F32 ? "scalar reference" : "fp32");
            /* shares of the profiled pass (its ops wait for completion) */
            printf("  time per op (profiled pass, %.3f s):", prof_dt);
            for (int32_t k = 0; k < n_ops; k++)
                if (prof_best[k].calls)
                    printf(" %s %.1f%%", prof_best[k].name, 100.0 * prof_best[k].seconds / prof_dt);
            printf(" (other %.1f%%)\n", 100.0 * (prof_dt - op_total) / prof_dt);
        }
        free(w.ids);
        free(w.offsets);
        free(path);
    }
    ember_ctx_free(ctx);
    ember_model_free(m);
    return rc;
}
