"""SoftCoT: a frozen backbone steered by a small frozen assistant's soft thoughts through a trained projection."""
