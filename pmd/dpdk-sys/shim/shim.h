/* The C side of dpdk-sys.
 *
 * DPDK's fast path (rx/tx burst, mbuf alloc/free, the dmadev enqueue/submit/completion calls) is
 * written as static-inline functions in its headers, so there is no symbol for Rust to link to.
 * This shim gives each one a real symbol. It also includes every header whose API the pmd crate
 * binds, so that bindgen sees one translation unit.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ethdev.h>
#include <rte_dmadev.h>
#include <rte_dev.h>
#include <rte_rcu_qsbr.h>
#include <rte_telemetry.h>

/* Values DPDK defines with function-like macros (RTE_BIT64), which bindgen cannot evaluate.
 * Plain macros bindgen can read; shim.c checks each against DPDK's own definition. */
#define SHIM_ETH_TX_OFFLOAD_MBUF_FAST_FREE (1ULL << 16)
#define SHIM_DMA_CAPA_MEM_TO_MEM (1ULL << 0)
#define SHIM_DMA_CAPA_SVA (1ULL << 4)
#define SHIM_DMA_CAPA_SILENT (1ULL << 5)
#define SHIM_DMA_CAPA_HANDLES_ERRORS (1ULL << 6)
#define SHIM_DMA_CAPA_OPS_COPY (1ULL << 32)
#define SHIM_DMA_CAPA_OPS_COPY_SG (1ULL << 33)
#define SHIM_DMA_CAPA_OPS_FILL (1ULL << 34)
#define SHIM_MBUF_F_EXTERNAL (1ULL << 61)
#define SHIM_MBUF_F_INDIRECT (1ULL << 62)
/* RSS on IP, UDP and TCP: RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP */
#define SHIM_ETH_RSS_IP_UDP_TCP ((1ULL << 2) | (1ULL << 3) | (1ULL << 4) | (1ULL << 5) | (1ULL << 7) | (1ULL << 8) | (1ULL << 9) | (1ULL << 10) | (1ULL << 11) | (1ULL << 13) | (1ULL << 15) | (1ULL << 16) | (1ULL << 17))

/* rte_errno is a per-lcore (TLS) variable: read it through a function. */
int shim_rte_errno(void);

/* ethdev fast path */
uint16_t shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                           uint16_t nb_pkts);
uint16_t shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                           uint16_t nb_pkts);

/* mbuf */
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void shim_pktmbuf_free(struct rte_mbuf *m);
void shim_mempool_put_bulk(struct rte_mempool *mp, void *const *objs, unsigned int n);
unsigned int shim_mempool_avail_count(const struct rte_mempool *mp);
unsigned int shim_mempool_in_use_count(const struct rte_mempool *mp);

/* The address of this thread's lcore id (DPDK's per-thread RTE_PER_LCORE(_lcore_id)): Rust
 * cannot name a C thread-local variable, so pmd asks for its address once per thread and reads
 * it from there (it is the same variable rte_lcore_id() reads, for the thread's whole life). */
const unsigned int *shim_lcore_id_ptr(void);

/* DPDK's own rte_pktmbuf_reset, rte_mbuf_raw_alloc and the mempool's bulk get, for the test
 * that compares pmd's Rust fast path with DPDK's inline one. */
void shim_pktmbuf_reset(struct rte_mbuf *m);
struct rte_mbuf *shim_mbuf_raw_alloc(struct rte_mempool *mp);
int shim_mempool_get_bulk(struct rte_mempool *mp, void **objs, unsigned int n);

/* timing */
uint64_t shim_rdtsc(void);
unsigned int shim_lcore_id(void);

/* dmadev fast path */
int shim_dma_copy(int16_t dev_id, uint16_t vchan, rte_iova_t src, rte_iova_t dst, uint32_t length,
                  uint64_t flags);
int shim_dma_submit(int16_t dev_id, uint16_t vchan);
uint16_t shim_dma_completed(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
                            bool *has_error);
uint16_t shim_dma_completed_status(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls,
                                   uint16_t *last_idx, enum rte_dma_status_code *status);
uint16_t shim_dma_burst_capacity(int16_t dev_id, uint16_t vchan);

/* rcu qsbr (for refbench's comparison) */
void shim_rcu_qsbr_quiescent(struct rte_rcu_qsbr *v, unsigned int thread_id);
void shim_rcu_qsbr_thread_online(struct rte_rcu_qsbr *v, unsigned int thread_id);
void shim_rcu_qsbr_thread_offline(struct rte_rcu_qsbr *v, unsigned int thread_id);
uint64_t shim_rcu_qsbr_start(struct rte_rcu_qsbr *v);
int shim_rcu_qsbr_check(struct rte_rcu_qsbr *v, uint64_t t, bool wait);

#endif
