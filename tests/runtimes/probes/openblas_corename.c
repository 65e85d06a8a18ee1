/* Print the kernel family a DYNAMIC_ARCH OpenBLAS chose at load: openblas_get_corename() of the library argv[1].
 * Loaded with dlopen so the one probe serves any OpenBLAS build (cross-compiled for arm64 by the suite). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBOPENBLAS\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (lib == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    char *(*corename)(void) = (char *(*)(void))dlsym(lib, "openblas_get_corename");
    if (corename == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    printf("%s\n", corename());
    return 0;
}
