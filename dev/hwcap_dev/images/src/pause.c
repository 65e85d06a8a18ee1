/* pause: the pod sandbox's one process. It holds the pod's namespaces and does nothing else; SIGTERM and
 * SIGINT end it (the container runtime stops sandboxes with SIGTERM), zombies re-parented to it are reaped. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    signal(SIGTERM, quit);
    signal(SIGINT, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
