#include "shim.h"

_Static_assert(SHIM_ETH_TX_OFFLOAD_MBUF_FAST_FREE == RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE,
	       "SHIM_ETH_TX_OFFLOAD_MBUF_FAST_FREE");
_Static_assert(SHIM_ETH_RSS_IP_UDP_TCP == (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP),
	       "SHIM_ETH_RSS_IP_UDP_TCP");
_Static_assert(SHIM_DMA_CAPA_MEM_TO_MEM == RTE_DMA_CAPA_MEM_TO_MEM, "SHIM_DMA_CAPA_MEM_TO_MEM");
_Static_assert(SHIM_DMA_CAPA_SVA == RTE_DMA_CAPA_SVA, "SHIM_DMA_CAPA_SVA");
_Static_assert(SHIM_DMA_CAPA_OPS_COPY == RTE_DMA_CAPA_OPS_COPY, "SHIM_DMA_CAPA_OPS_COPY");
_Static_assert(SHIM_DMA_CAPA_SILENT == RTE_DMA_CAPA_SILENT, "SHIM_DMA_CAPA_SILENT");
_Static_assert(SHIM_DMA_CAPA_HANDLES_ERRORS == RTE_DMA_CAPA_HANDLES_ERRORS,
	       "SHIM_DMA_CAPA_HANDLES_ERRORS");
_Static_assert(SHIM_DMA_CAPA_OPS_COPY_SG == RTE_DMA_CAPA_OPS_COPY_SG, "SHIM_DMA_CAPA_OPS_COPY_SG");
_Static_assert(SHIM_DMA_CAPA_OPS_FILL == RTE_DMA_CAPA_OPS_FILL, "SHIM_DMA_CAPA_OPS_FILL");
_Static_assert(SHIM_MBUF_F_EXTERNAL == RTE_MBUF_F_EXTERNAL, "SHIM_MBUF_F_EXTERNAL");
_Static_assert(SHIM_MBUF_F_INDIRECT == RTE_MBUF_F_INDIRECT, "SHIM_MBUF_F_INDIRECT");

int shim_rte_errno(void) { return rte_errno; }

uint16_t shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                           uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                           uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void shim_mempool_put_bulk(struct rte_mempool *mp, void *const *objs, unsigned int n)
{
	rte_mempool_put_bulk(mp, objs, n);
}

unsigned int shim_mempool_avail_count(const struct rte_mempool *mp)
{
	return rte_mempool_avail_count(mp);
}

unsigned int shim_mempool_in_use_count(const struct rte_mempool *mp)
{
	return rte_mempool_in_use_count(mp);
}

const unsigned int *shim_lcore_id_ptr(void) { return &RTE_PER_LCORE(_lcore_id); }

void shim_pktmbuf_reset(struct rte_mbuf *m) { rte_pktmbuf_reset(m); }

struct rte_mbuf *shim_mbuf_raw_alloc(struct rte_mempool *mp) { return rte_mbuf_raw_alloc(mp); }

int shim_mempool_get_bulk(struct rte_mempool *mp, void **objs, unsigned int n)
{
	return rte_mempool_get_bulk(mp, objs, n);
}

uint64_t shim_rdtsc(void) { return rte_rdtsc(); }

unsigned int shim_lcore_id(void) { return rte_lcore_id(); }

int shim_dma_copy(int16_t dev_id, uint16_t vchan, rte_iova_t src, rte_iova_t dst, uint32_t length,
                  uint64_t flags)
{
	return rte_dma_copy(dev_id, vchan, src, dst, length, flags);
}

int shim_dma_submit(int16_t dev_id, uint16_t vchan) { return rte_dma_submit(dev_id, vchan); }

uint16_t shim_dma_completed(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls, uint16_t *last_idx,
                            bool *has_error)
{
	return rte_dma_completed(dev_id, vchan, nb_cpls, last_idx, has_error);
}

uint16_t shim_dma_completed_status(int16_t dev_id, uint16_t vchan, uint16_t nb_cpls,
                                   uint16_t *last_idx, enum rte_dma_status_code *status)
{
	return rte_dma_completed_status(dev_id, vchan, nb_cpls, last_idx, status);
}

uint16_t shim_dma_burst_capacity(int16_t dev_id, uint16_t vchan)
{
	return rte_dma_burst_capacity(dev_id, vchan);
}

void shim_rcu_qsbr_quiescent(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_quiescent(v, thread_id);
}

void shim_rcu_qsbr_thread_online(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_thread_online(v, thread_id);
}

void shim_rcu_qsbr_thread_offline(struct rte_rcu_qsbr *v, unsigned int thread_id)
{
	rte_rcu_qsbr_thread_offline(v, thread_id);
}

uint64_t shim_rcu_qsbr_start(struct rte_rcu_qsbr *v) { return rte_rcu_qsbr_start(v); }

int shim_rcu_qsbr_check(struct rte_rcu_qsbr *v, uint64_t t, bool wait)
{
	return rte_rcu_qsbr_check(v, t, wait);
}
