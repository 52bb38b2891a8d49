// SPDX-License-Identifier: GPL-2.0
/*
 * lskel-trigger: run a loader, attach one of its programs to a raw tracepoint,
 * make the program run, and print one map's value as the program left it.
 *
 *   lskel-trigger DATA.bin INSNS.bin NR_MAPS NR_PROGS PROG TRACEPOINT MAP
 *
 * PROG and MAP are indexes into the skeleton's program and map descriptors.
 * The loader runs through bpf_load_and_run() of libbpf's skel_internal.h with
 * an all-zero context, as a light skeleton's __load does. TRACEPOINT is a raw
 * tracepoint that every system call passes (sys_enter): one getppid() after
 * the attach is the trigger, and the program has run when it returns.
 *
 * Prints "value HEX" (the bytes of key 0 of MAP, in the kernel's order), or
 * "FAIL step: errno" and exits 1. Built static for the s390x guest
 * (tests/test_vm_s390x.py), where it shows what a big-endian kernel's program
 * reads from the .kconfig values a loader wrote.
 */
#include <errno.h>
#include <bpf/skel_internal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *slurp(const char *path, __u32 *size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	void *buf;

	if (!f || fstat(fileno(f), &st)) {
		printf("FAIL open %s: %d\n", path, errno);
		exit(1);
	}
	buf = calloc(1, st.st_size + 1);
	if (!buf || fread(buf, 1, st.st_size, f) != (size_t)st.st_size) {
		printf("FAIL read %s: %d\n", path, errno);
		exit(1);
	}
	fclose(f);
	*size = st.st_size;
	return buf;
}

static int fail(const char *step, int err)
{
	printf("FAIL %s: %d (%s)\n", step, err, strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	struct bpf_load_and_run_opts opts = {};
	struct bpf_loader_ctx *ctx;
	struct bpf_map_desc *maps;
	struct bpf_prog_desc *progs;
	struct bpf_map_info info;
	union bpf_attr attr;
	int nr_maps, nr_progs, prog, map, link, err;
	unsigned char *value;
	__u32 key = 0, i;
	size_t ctx_size;

	if (argc != 8) {
		fprintf(stderr, "usage: %s DATA INSNS NR_MAPS NR_PROGS PROG TRACEPOINT MAP\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	nr_maps = atoi(argv[3]);
	nr_progs = atoi(argv[4]);
	prog = atoi(argv[5]);
	map = atoi(argv[7]);
	if (prog < 0 || prog >= nr_progs || map < 0 || map >= nr_maps)
		return 2;
	ctx_size = sizeof(*ctx) + nr_maps * sizeof(*maps) + nr_progs * sizeof(*progs);
	ctx = calloc(1, ctx_size);
	ctx->sz = ctx_size;
	maps = (struct bpf_map_desc *)(ctx + 1);
	progs = (struct bpf_prog_desc *)(maps + nr_maps);
	opts.ctx = ctx;
	opts.data = slurp(argv[1], &opts.data_sz);
	opts.insns = slurp(argv[2], &opts.insns_sz);
	err = bpf_load_and_run(&opts);
	if (err)
		return fail(opts.errstr ? opts.errstr : "load", -err);

	memset(&attr, 0, sizeof(attr));
	attr.raw_tracepoint.name = (long)argv[6];
	attr.raw_tracepoint.prog_fd = progs[prog].prog_fd;
	link = skel_sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &attr, sizeof(attr));
	if (link < 0)
		return fail("attach", errno);
	syscall(SYS_getppid);
	close(link);

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = maps[map].map_fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (long)&info;
	if (skel_sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)))
		return fail("map info", errno);
	value = calloc(1, info.value_size + 1);
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = maps[map].map_fd;
	attr.key = (long)&key;
	attr.value = (long)value;
	if (skel_sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)))
		return fail("lookup", errno);
	printf("value ");
	for (i = 0; i < info.value_size; i++)
		printf("%02x", value[i]);
	printf("\n");
	return 0;
}
